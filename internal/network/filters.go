package network

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
)

// listFilters are Docker's network ls filters; values of one key are
// alternatives, keys must all match.
type listFilters struct {
	args map[string][]string
}

func parseListFilters(args map[string][]string) (listFilters, error) {
	for k, vs := range args {
		switch k {
		case "driver", "id", "label", "name", "scope":
		case "type":
			for _, v := range vs {
				if v != "custom" && v != "builtin" {
					return listFilters{}, fmt.Errorf("invalid filter: 'type'='%s': %w", v, errdefs.ErrInvalidArgument)
				}
			}
		case "dangling":
			for _, v := range vs {
				if _, err := strconv.ParseBool(v); err != nil {
					return listFilters{}, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
				}
			}
		default:
			return listFilters{}, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return listFilters{args: args}, nil
}

// match reports whether n passes; inUse tells whether a container uses it.
func (f listFilters) match(n *netState, inUse bool) bool {
	r := &n.rec
	for k, vs := range f.args {
		if len(vs) == 0 {
			continue
		}
		ok := false
		for _, v := range vs {
			switch k {
			case "driver":
				ok = ok || r.Driver == v
			case "id":
				ok = ok || strings.HasPrefix(r.ID, v)
			case "name":
				ok = ok || matchPattern(v, r.Name)
			case "label":
				ok = ok || matchLabel(r.Labels, v)
			case "scope":
				ok = ok || v == "local"
			case "type":
				ok = ok || (v == "builtin") == r.predefined()
			case "dangling":
				b, _ := strconv.ParseBool(v)
				ok = ok || (b == (!r.predefined() && !inUse))
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// matchPattern matches as Docker's filters do: the value is a regular
// expression found anywhere in s (a plain name matches part of s).
func matchPattern(pattern, s string) bool {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return strings.Contains(s, pattern)
	}
	return re.MatchString(s)
}

// matchLabel matches "key" (present) or "key=value".
func matchLabel(labels map[string]string, f string) bool {
	k, v, hasValue := strings.Cut(f, "=")
	got, ok := labels[k]
	return ok && (!hasValue || got == v)
}

// pruneFilters are Docker's network prune filters.
type pruneFilters struct {
	until    time.Time
	labels   []string
	notLabel []string
}

func parsePruneFilters(args map[string][]string) (pruneFilters, error) {
	var f pruneFilters
	for k, vs := range args {
		switch k {
		case "until":
			if len(vs) > 1 {
				return f, fmt.Errorf("more than one until filter: %w", errdefs.ErrInvalidArgument)
			}
			for _, v := range vs {
				t, err := parseUntil(v, time.Now())
				if err != nil {
					return f, err
				}
				f.until = t
			}
		case "label":
			f.labels = vs
		case "label!":
			f.notLabel = vs
		default:
			return f, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return f, nil
}

func (f pruneFilters) match(n *netState) bool {
	if !f.until.IsZero() && !n.rec.Created.Before(f.until) {
		return false
	}
	for _, l := range f.labels {
		if !matchLabel(n.rec.Labels, l) {
			return false
		}
	}
	for _, l := range f.notLabel {
		if matchLabel(n.rec.Labels, l) {
			return false
		}
	}
	return true
}

// parseUntil reads Docker's timestamp forms: a Go duration before now
// ("24h"), Unix seconds with optional fraction, or RFC 3339 (with or
// without time).
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if sec, frac, _ := strings.Cut(v, "."); sec != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ns := int64(0)
			if frac != "" {
				f, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
				if err != nil {
					return time.Time{}, fmt.Errorf("invalid until filter %q: %w", v, errdefs.ErrInvalidArgument)
				}
				ns = f
			}
			return time.Unix(s, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid until filter %q: want a duration, Unix seconds or an RFC 3339 time: %w", v, errdefs.ErrInvalidArgument)
}
