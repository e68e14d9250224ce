package image

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
)

// runConfig is the "config" object of an image config: the OCI fields and
// those only Docker writes (health check, ONBUILD triggers, shell), so that
// a commit or import keeps what the parent image had.
type runConfig struct {
	ocispec.ImageConfig
	Healthcheck json.RawMessage `json:"Healthcheck,omitempty"`
	OnBuild     []string        `json:"OnBuild,omitempty"`
	Shell       []string        `json:"Shell,omitempty"`
}

// change is one parsed --change instruction.
type change struct {
	text  string // as given, for errors
	instr string // upper case: CMD, ENV, ...
	args  string // the rest of the line, trimmed
}

// changeInstructions are the Dockerfile instructions docker commit and
// docker import accept in --change.
var changeInstructions = []string{"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// parseChanges checks the --change values of a commit or import without
// applying them, so that bad input fails before any work is done.
func parseChanges(changes []string) ([]change, error) {
	out := make([]change, 0, len(changes))
	for _, text := range changes {
		line := strings.TrimSpace(text)
		instr, args := splitFirst(line)
		instr = strings.ToUpper(instr)
		if instr == "" {
			return nil, fmt.Errorf("change %q: empty instruction: %w", text, errdefs.ErrInvalidArgument)
		}
		if !slices.Contains(changeInstructions, instr) {
			return nil, fmt.Errorf("change %q: %s is not a valid change command (allowed: %s): %w",
				text, instr, strings.Join(changeInstructions, ", "), errdefs.ErrInvalidArgument)
		}
		c := change{text: text, instr: instr, args: args}
		// Apply to a scratch config to find every error the values can have.
		if err := applyChanges(&runConfig{}, []change{c}); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// applyChanges applies parsed changes to c in order, as Docker's commit
// does: ENV values expand the variables set so far, a relative WORKDIR is
// joined to the current one, and ENTRYPOINT clears an inherited CMD unless
// a CMD came before it in the same list.
func applyChanges(c *runConfig, changes []change) error {
	cmdSet := false
	for _, ch := range changes {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("change %q: %s: %w", ch.text, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
		}
		lookup := func(name string) (string, bool) { return envLookup(c.Env, name) }
		switch ch.instr {
		case "CMD", "ENTRYPOINT":
			if ch.args == "" {
				return fail("%s requires at least one argument", ch.instr)
			}
			argv := execForm(ch.args)
			if argv == nil {
				shell := c.Shell
				if len(shell) == 0 {
					shell = []string{"/bin/sh", "-c"}
				}
				argv = append(slices.Clone(shell), ch.args)
			}
			if ch.instr == "CMD" {
				c.Cmd, cmdSet = argv, true
			} else {
				c.Entrypoint = argv
				if !cmdSet {
					c.Cmd = nil
				}
			}
		case "ENV", "LABEL":
			pairs, err := nameValues(ch.args, lookup)
			if err != nil {
				return fail("%v", err)
			}
			if len(pairs) == 0 {
				return fail("%s requires at least one argument", ch.instr)
			}
			for _, kv := range pairs {
				if ch.instr == "ENV" {
					c.Env = setEnv(c.Env, kv[0], kv[1])
					continue
				}
				if c.Labels == nil {
					c.Labels = map[string]string{}
				}
				c.Labels[kv[0]] = kv[1]
			}
		case "EXPOSE":
			words, err := shellWords(ch.args, lookup)
			if err != nil {
				return fail("%v", err)
			}
			if len(words) == 0 {
				return fail("EXPOSE requires at least one argument")
			}
			for _, w := range words {
				ports, err := exposedPorts(w)
				if err != nil {
					return fail("%v", err)
				}
				if c.ExposedPorts == nil {
					c.ExposedPorts = map[string]struct{}{}
				}
				for _, p := range ports {
					c.ExposedPorts[p] = struct{}{}
				}
			}
		case "VOLUME":
			vols := execForm(ch.args)
			if vols == nil {
				var err error
				if vols, err = shellWords(ch.args, lookup); err != nil {
					return fail("%v", err)
				}
			}
			if len(vols) == 0 {
				return fail("VOLUME requires at least one argument")
			}
			for _, v := range vols {
				v = strings.TrimSpace(v)
				if v == "" {
					return fail("VOLUME specified can not be an empty string")
				}
				if c.Volumes == nil {
					c.Volumes = map[string]struct{}{}
				}
				c.Volumes[v] = struct{}{}
			}
		case "USER", "STOPSIGNAL":
			words, err := shellWords(ch.args, lookup)
			if err != nil {
				return fail("%v", err)
			}
			if len(words) != 1 || words[0] == "" {
				return fail("%s requires exactly one argument", ch.instr)
			}
			if ch.instr == "USER" {
				c.User = words[0]
			} else {
				if !validSignal(words[0]) {
					return fail("invalid signal %q", words[0])
				}
				c.StopSignal = words[0]
			}
		case "WORKDIR":
			dir, err := shellWord(ch.args, lookup)
			if err != nil {
				return fail("%v", err)
			}
			if dir == "" {
				return fail("WORKDIR requires exactly one argument")
			}
			if !path.IsAbs(dir) {
				base := c.WorkingDir
				if base == "" {
					base = "/"
				}
				dir = path.Join(base, dir)
			}
			c.WorkingDir = path.Clean(dir)
		case "ONBUILD":
			inner, _ := splitFirst(ch.args)
			switch strings.ToUpper(inner) {
			case "":
				return fail("ONBUILD requires at least one argument")
			case "ONBUILD":
				return fail("chaining ONBUILD via ONBUILD ONBUILD is not allowed")
			case "FROM", "MAINTAINER":
				return fail("%s is not allowed as an ONBUILD trigger", strings.ToUpper(inner))
			}
			c.OnBuild = append(c.OnBuild, ch.args)
		}
	}
	return nil
}

// splitFirst splits s at its first run of white space into the first word
// and the trimmed rest.
func splitFirst(s string) (first, rest string) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i+1:])
}

// execForm returns the JSON array s holds, or nil if s is not a JSON array
// of strings (it is then in shell form).
func execForm(s string) []string {
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil {
		return nil
	}
	if argv == nil {
		argv = []string{}
	}
	return argv
}

// nameValues parses the arguments of ENV or LABEL: "k=v k2='v 2'" pairs,
// or the legacy "k the rest of the line".
func nameValues(s string, lookup func(string) (string, bool)) ([][2]string, error) {
	first, rest := splitFirst(s)
	if first != "" && !strings.Contains(first, "=") {
		key, err := shellWord(first, lookup)
		if err != nil {
			return nil, err
		}
		if rest == "" {
			return nil, fmt.Errorf("%s needs a value (key=value or key value)", key)
		}
		val, err := shellWord(rest, lookup)
		if err != nil {
			return nil, err
		}
		return [][2]string{{key, val}}, nil
	}
	words, err := shellWords(s, lookup)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not of the form key=value", w)
		}
		if k == "" {
			return nil, fmt.Errorf("%q has an empty key", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// exposedPorts expands one EXPOSE word ("80", "53/udp", "8000-8002/tcp")
// into "port/proto" keys.
func exposedPorts(w string) ([]string, error) {
	ports, proto, ok := strings.Cut(w, "/")
	proto = strings.ToLower(proto)
	if !ok {
		proto = "tcp"
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("invalid protocol %q in port %q", proto, w)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || start == 0 {
		return nil, fmt.Errorf("invalid port %q", w)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid port range %q", w)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, strconv.FormatUint(p, 10)+"/"+proto)
	}
	return out, nil
}

// signalNames are the Linux signals STOPSIGNAL accepts by name.
var signalNames = []string{
	"ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
	"KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
	"TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
}

// validSignal reports whether s names a Linux signal: a number from 1 to
// 64, a name with or without SIG, or RTMIN+n / RTMAX-n.
func validSignal(s string) bool {
	if n, err := strconv.Atoi(s); err == nil {
		return n >= 1 && n <= 64
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if slices.Contains(signalNames, name) || name == "RTMIN" || name == "RTMAX" {
		return true
	}
	for _, rt := range []string{"RTMIN+", "RTMAX-"} {
		if n, ok := strings.CutPrefix(name, rt); ok {
			v, err := strconv.Atoi(n)
			return err == nil && v >= 1 && v <= 30
		}
	}
	return false
}

// envLookup finds name in a "K=V" list.
func envLookup(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(env[i], "="); k == name {
			return v, true
		}
	}
	return "", false
}

// setEnv sets name=value in a "K=V" list, replacing an earlier value.
func setEnv(env []string, name, value string) []string {
	out := slices.Clone(env)
	for i, kv := range out {
		if k, _, _ := strings.Cut(kv, "="); k == name {
			out[i] = name + "=" + value
			return out
		}
	}
	return append(out, name+"="+value)
}

// shellWords splits s into words as a Dockerfile does for ENV, LABEL,
// EXPOSE and the like: unquoted white space separates words, 'single
// quotes' are literal, "double quotes" group, a backslash escapes the next
// character, and $VAR, ${VAR}, ${VAR:-word} and ${VAR:+word} expand
// (except inside single quotes).
func shellWords(s string, lookup func(string) (string, bool)) ([]string, error) {
	return lexWords(s, lookup, true)
}

// shellWord is shellWords without splitting: white space is kept.
func shellWord(s string, lookup func(string) (string, bool)) (string, error) {
	w, err := lexWords(s, lookup, false)
	if err != nil || len(w) == 0 {
		return "", err
	}
	return w[0], nil
}

func lexWords(s string, lookup func(string) (string, bool), split bool) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	r := []rune(s)
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case split && (c == ' ' || c == '\t' || c == '\n'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(r) {
				i++
				cur.WriteRune(r[i])
			} else {
				cur.WriteRune(c)
			}
		case c == '\'':
			inWord = true
			j := i + 1
			for j < len(r) && r[j] != '\'' {
				j++
			}
			if j == len(r) {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			cur.WriteString(string(r[i+1 : j]))
			i = j
		case c == '"':
			inWord = true
			j := i + 1
			for ; j < len(r) && r[j] != '"'; j++ {
				switch {
				case r[j] == '\\' && j+1 < len(r) && strings.ContainsRune(`"\$`, r[j+1]):
					j++
					cur.WriteRune(r[j])
				case r[j] == '$':
					n, err := expandVar(r, j, lookup, &cur)
					if err != nil {
						return nil, err
					}
					j = n
				default:
					cur.WriteRune(r[j])
				}
			}
			if j == len(r) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
			i = j
		case c == '$':
			inWord = true
			n, err := expandVar(r, i, lookup, &cur)
			if err != nil {
				return nil, err
			}
			i = n
		default:
			inWord = true
			cur.WriteRune(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// expandVar expands the variable reference starting with the '$' at r[i]
// into out and returns the index of its last rune.
func expandVar(r []rune, i int, lookup func(string) (string, bool), out *strings.Builder) (int, error) {
	isName := func(c rune, first bool) bool {
		return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	if i+1 < len(r) && r[i+1] == '{' {
		end := i + 2
		for end < len(r) && r[end] != '}' {
			end++
		}
		if end == len(r) {
			return 0, fmt.Errorf("missing '}' in %q", string(r))
		}
		body := string(r[i+2 : end])
		name, word, op := body, "", ""
		for _, o := range []string{":-", ":+"} {
			if k, w, ok := strings.Cut(body, o); ok {
				name, word, op = k, w, o
				break
			}
		}
		if name == "" || strings.IndexFunc(name, func(c rune) bool { return !isName(c, false) }) >= 0 {
			return 0, fmt.Errorf("bad substitution ${%s}", body)
		}
		val, ok := lookup(name)
		switch op {
		case ":-":
			if !ok || val == "" {
				val = word
			}
		case ":+":
			if ok && val != "" {
				val = word
			} else {
				val = ""
			}
		}
		out.WriteString(val)
		return end, nil
	}
	end := i + 1
	for end < len(r) && isName(r[end], end == i+1) {
		end++
	}
	if end == i+1 {
		out.WriteRune('$') // a lone $ is literal
		return i, nil
	}
	val, _ := lookup(string(r[i+1 : end]))
	out.WriteString(val)
	return end - 1, nil
}
