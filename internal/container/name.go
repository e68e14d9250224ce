package container

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
)

// validName is Docker's rule for container names.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidateName checks a user-given name (with or without the leading "/")
// and returns it without the slash.
func ValidateName(name string) (string, error) {
	if !validName.MatchString(name) {
		//lint:ignore ST1005 Docker's wording, which clients match
		return "", fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	return strings.TrimPrefix(name, "/"), nil
}

// NewID returns a new random 64-hex container ID that is not all digits
// (Docker avoids those: a short ID like 123456789012 reads as a number).
func NewID() string {
	for {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand never fails on Linux
		}
		id := hex.EncodeToString(b[:])
		if strings.Trim(id[:12], "0123456789") != "" {
			return id
		}
	}
}

// ShortID is the 12-character form of an ID.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Generated names are "adjective_noun", like Docker's; the words are our
// own. A retry adds a digit.
var (
	nameLeft = []string{
		"agile", "amber", "ardent", "azure", "bold", "brave", "breezy", "bright",
		"calm", "candid", "clever", "cosmic", "crisp", "curious", "daring", "deft",
		"eager", "earnest", "easy", "fair", "fervent", "fleet", "frosty", "gentle",
		"glad", "golden", "grand", "happy", "hardy", "hearty", "humble", "jolly",
		"keen", "kind", "lively", "lucid", "lucky", "merry", "mellow", "modest",
		"nimble", "noble", "plucky", "polite", "proud", "quick", "quiet", "rapid",
		"ready", "robust", "rosy", "rustic", "serene", "sharp", "shiny", "silent",
		"smooth", "snappy", "solid", "steady", "sturdy", "sunny", "swift", "tidy",
		"tranquil", "trusty", "upbeat", "vivid", "warm", "wise", "witty", "zesty",
	}
	nameRight = []string{
		"anchor", "atoll", "beacon", "bollard", "bosun", "bow", "breakwater", "buoy",
		"cabin", "canal", "cargo", "channel", "compass", "coral", "cove", "crane",
		"current", "davit", "delta", "dock", "dory", "estuary", "ferry", "fjord",
		"galley", "gangway", "harbor", "hatch", "haven", "helm", "hull", "inlet",
		"isthmus", "jetty", "keel", "kelp", "lagoon", "lantern", "ledger", "lighthouse",
		"lock", "mast", "marina", "mooring", "narrows", "oar", "pier", "pilot",
		"port", "quay", "reef", "rigging", "rudder", "sail", "schooner", "shoal",
		"skiff", "slip", "sound", "spar", "starboard", "strait", "tide", "tiller",
		"trawler", "tug", "wake", "wharf", "winch", "yacht", "yard", "zephyr",
	}
)

// GenerateName returns a random name; retry > 0 appends a digit, for when
// the plain name is taken.
func GenerateName(retry int) string {
	pick := func(words []string) string {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(words))))
		if err != nil {
			panic(err)
		}
		return words[n.Int64()]
	}
	name := pick(nameLeft) + "_" + pick(nameRight)
	if retry > 0 {
		n, _ := rand.Int(rand.Reader, big.NewInt(10))
		name += n.String()
	}
	return name
}
