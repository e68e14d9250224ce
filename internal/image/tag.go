package image

import (
	"context"
	"fmt"
	"time"

	"github.com/distribution/reference"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
)

// Tag points the name target (given a tag or getting latest) at the image
// source names. A digest reference cannot be a tag target.
func (s *Service) Tag(ctx context.Context, source, target string) error {
	ref, err := ParseReference(target)
	if err != nil {
		return err
	}
	tagged, ok := ref.(reference.NamedTagged)
	if !ok {
		return fmt.Errorf("tag %s: refusing to create a tag with a digest reference: %w", target, errdefs.ErrInvalidArgument)
	}
	return s.cfg.DB.Update(func(tx *metadata.Tx) error {
		img, err := resolveTx(tx, source)
		if err != nil {
			return err
		}
		if err := tx.SetTag(TaggedString(tagged), img.ID); err != nil {
			return fmt.Errorf("tag %s as %s: %w", source, target, err)
		}
		img.LastTagTime = time.Now().UTC()
		return tx.PutImage(img)
	})
}
