package daemon

import (
	"fmt"
	"testing"
	"time"
)

func TestEventsSinceAndLive(t *testing.T) {
	bus := NewEvents()
	t0 := time.Now()
	bus.Publish(Event{Type: "image", Action: "pull", ID: "a:1", Time: t0.Add(-time.Minute)})
	bus.Publish(Event{Type: "image", Action: "tag", ID: "sha256:abc", Time: t0})
	past, sub := bus.Subscribe(t0)
	defer sub.Close()
	if len(past) != 1 || past[0].Action != "tag" {
		t.Fatalf("past since t0: %+v", past)
	}
	bus.Publish(Event{Type: "image", Action: "delete", ID: "sha256:abc"})
	select {
	case ev := <-sub.C:
		if ev.Action != "delete" || ev.Time.IsZero() {
			t.Errorf("live event %+v", ev)
		}
	default:
		t.Fatal("published event not delivered")
	}
	if n := bus.Listeners(); n != 1 {
		t.Errorf("listeners %d", n)
	}
	sub.Close()
	if _, ok := <-sub.C; ok {
		t.Error("channel open after Close")
	}
	if n := bus.Listeners(); n != 0 {
		t.Errorf("listeners after close %d", n)
	}
	sub.Close() // twice is fine
}

func TestEventsSlowSubscriberDropped(t *testing.T) {
	bus := NewEvents()
	_, slow := bus.Subscribe(time.Time{})
	for i := 0; i < subscriberBuffer+1; i++ {
		bus.Publish(Event{Type: "image", Action: "tag", ID: fmt.Sprint(i)})
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != subscriberBuffer || !slow.Dropped() {
		t.Errorf("slow subscriber got %d events, dropped=%v", n, slow.Dropped())
	}
}

func TestEventsHistoryBounded(t *testing.T) {
	bus := NewEvents()
	base := time.Now().Add(-time.Hour)
	for i := 0; i < eventHistory+10; i++ {
		bus.Publish(Event{Type: "image", Action: "tag", ID: fmt.Sprint(i), Time: base.Add(time.Duration(i) * time.Millisecond)})
	}
	past, sub := bus.Subscribe(base)
	sub.Close()
	if len(past) != eventHistory || past[0].ID != "10" {
		t.Errorf("history: %d events, first %q", len(past), past[0].ID)
	}
}

func TestEventFilter(t *testing.T) {
	pull := Event{Type: "image", Action: "pull", ID: "127.0.0.1:5000/busybox:1", Attributes: map[string]string{"name": "127.0.0.1:5000/busybox:1"}}
	del := Event{Type: "image", Action: "delete", ID: "sha256:0123456789ab", Attributes: map[string]string{"name": "sha256:0123456789ab"}}
	reload := Event{Type: "daemon", Action: "reload", ID: "x"}
	for _, tc := range []struct {
		f    EventFilter
		ev   Event
		want bool
	}{
		{EventFilter{}, reload, true},
		{EventFilter{Types: []string{"image"}}, reload, false},
		{EventFilter{Types: []string{"image", "daemon"}}, reload, true},
		{EventFilter{Actions: []string{"pull"}}, pull, true},
		{EventFilter{Actions: []string{"pull"}}, del, false},
		{EventFilter{Images: []string{"127.0.0.1:5000/busybox"}}, pull, true},
		{EventFilter{Images: []string{"127.0.0.1:5000/busybox:1"}}, pull, true},
		{EventFilter{Images: []string{"busybox"}}, pull, false},
		{EventFilter{Images: []string{"0123456789ab"}}, del, true},
		{EventFilter{Images: []string{"sha256:0123"}}, del, true},
		{EventFilter{Images: []string{"012"}}, del, false},
	} {
		if got := tc.f.Match(tc.ev); got != tc.want {
			t.Errorf("%+v matches %s %s: %v, want %v", tc.f, tc.ev.Action, tc.ev.ID, got, tc.want)
		}
	}
}
