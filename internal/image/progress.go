package image

// Progress is one step of a pull, push or load, in the words Docker's
// progress stream uses ("Pulling fs layer", "Downloading", "Extracting",
// "Pull complete", ...). ID is the short layer digest for layer steps and
// empty or the tag for image-level messages; Current and Total count bytes
// when known.
type Progress struct {
	ID      string
	Status  string
	Current int64
	Total   int64
}

// ProgressFunc receives progress. It is called from several goroutines at
// once and must not block for long.
type ProgressFunc func(Progress)

func (f ProgressFunc) report(id, status string, cur, total int64) {
	if f != nil {
		f(Progress{ID: id, Status: status, Current: cur, Total: total})
	}
}

// shortID is the 12-hex-digit form of a digest Docker shows.
func shortID(d interface{ Encoded() string }) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}
