package registry

import "time"

// Bounds of the Client's caches. A session lives no longer than its token
// (when the token server says how long that is) nor sessionTTL, so that
// changed credentials or a moved registry are noticed; a ping result lives
// pingTTL. Each cache holds at most its max entries.
const (
	sessionTTL  = 5 * time.Minute
	pingTTL     = 5 * time.Minute
	maxSessions = 128
	maxPings    = 64
)

// ttlCache maps keys to values that expire. It is not safe for concurrent
// use: the Client guards it with its mutex.
type ttlCache[V any] struct {
	max     int
	entries map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[V any](max int) *ttlCache[V] {
	return &ttlCache[V]{max: max, entries: map[string]ttlEntry[V]{}}
}

// get returns the value of key unless it is missing or expired at now.
func (c *ttlCache[V]) get(key string, now time.Time) (V, bool) {
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		delete(c.entries, key)
		var zero V
		return zero, false
	}
	return e.v, true
}

// put stores v under key until expires. When the cache is full it drops
// the expired entries, and if none had, the one that expires first.
func (c *ttlCache[V]) put(key string, v V, expires, now time.Time) {
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			first := ""
			for k, e := range c.entries {
				if first == "" || e.expires.Before(c.entries[first].expires) {
					first = k
				}
			}
			delete(c.entries, first)
		}
	}
	c.entries[key] = ttlEntry[V]{v: v, expires: expires}
}

// len returns the number of entries, expired or not.
func (c *ttlCache[V]) len() int { return len(c.entries) }
