package daemon

import (
	"strings"
	"sync"
	"time"
)

// eventHistory is how many past events the bus keeps for subscribers that
// ask for events since a time (Docker keeps 1024 too).
const eventHistory = 1024

// subscriberBuffer is how many events a subscriber may fall behind before
// it is dropped; a client that does not read must not stall the daemon.
const subscriberBuffer = 256

// Event is one thing that happened to an object, as /events reports it.
type Event struct {
	Type       string // "image", "container", ...
	Action     string // "pull", "tag", "delete", ...
	ID         string // the object: an image ID or a reference
	Attributes map[string]string
	Time       time.Time
}

// EventFilter selects events: each non-empty list must match (any of its
// values), as Docker's type, event and image filters do.
type EventFilter struct {
	Types   []string
	Actions []string
	Images  []string
}

// Match reports whether ev passes f.
func (f EventFilter) Match(ev Event) bool {
	if len(f.Types) > 0 && !contains(f.Types, ev.Type) {
		return false
	}
	if len(f.Actions) > 0 && !contains(f.Actions, ev.Action) {
		return false
	}
	if len(f.Images) > 0 {
		ok := false
		for _, want := range f.Images {
			if imageMatches(want, ev) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// imageMatches reports whether the image filter value want names the
// image of ev: its ID (or a prefix of it), its name or the name without a
// tag.
func imageMatches(want string, ev Event) bool {
	cands := []string{ev.ID, ev.Attributes["name"], ev.Attributes["image"]}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if c == want || stripTag(c) == want {
			return true
		}
		if strings.HasPrefix(c, "sha256:") && len(want) >= 4 && (strings.HasPrefix(c, want) || strings.HasPrefix(strings.TrimPrefix(c, "sha256:"), want)) {
			return true
		}
	}
	return false
}

// stripTag drops a ":tag" after the last "/" of name.
func stripTag(name string) string {
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[:i]
	}
	return name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Events is the daemon's event bus: it keeps the last events and fans new
// ones out to subscribers. Its methods are safe for concurrent use.
type Events struct {
	mu      sync.Mutex
	history []Event
	subs    map[*Subscription]struct{}
}

// NewEvents returns an empty bus.
func NewEvents() *Events {
	return &Events{subs: map[*Subscription]struct{}{}}
}

// Subscription receives the events published after it was made on C. C is
// closed when the subscription is closed or when the subscriber fell too
// far behind (then Dropped reports true).
type Subscription struct {
	C       <-chan Event
	c       chan Event
	bus     *Events
	dropped bool
}

// Publish stamps ev with the time if it has none, keeps it in the history
// and sends it to every subscriber.
func (e *Events) Publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.history = append(e.history, ev)
	if len(e.history) > eventHistory {
		e.history = append(e.history[:0:0], e.history[len(e.history)-eventHistory:]...)
	}
	for s := range e.subs {
		select {
		case s.c <- ev:
		default:
			s.dropped = true
			delete(e.subs, s)
			close(s.c)
		}
	}
}

// Subscribe returns the kept events at or after since (none if since is
// zero) and a subscription to the events that follow, with none lost or
// repeated between the two.
func (e *Events) Subscribe(since time.Time) ([]Event, *Subscription) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var past []Event
	if !since.IsZero() {
		for _, ev := range e.history {
			if !ev.Time.Before(since) {
				past = append(past, ev)
			}
		}
	}
	c := make(chan Event, subscriberBuffer)
	s := &Subscription{C: c, c: c, bus: e}
	e.subs[s] = struct{}{}
	return past, s
}

// Close ends the subscription; C is closed.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	if _, ok := s.bus.subs[s]; ok {
		delete(s.bus.subs, s)
		close(s.c)
	}
}

// Dropped reports whether the bus ended the subscription because its
// reader fell behind. Call it after C is closed.
func (s *Subscription) Dropped() bool {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.dropped
}

// Listeners returns the number of subscribers.
func (e *Events) Listeners() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}
