package network

import (
	"context"
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
)

// The one record of kind "forwarding" says which families' forwarding
// berth turned on itself, and in which boot of the host.
const (
	kindForwarding = "forwarding"
	keyForwarding  = "host"
)

// forwardRecord is that record. A record of another boot says nothing:
// the switches start off (or as the host's configuration sets them) at
// every boot.
type forwardRecord struct {
	BootID string `json:"bootID"`
	IPv4   bool   `json:"ipv4,omitempty"`
	IPv6   bool   `json:"ipv6,omitempty"`
}

// forwarding turns on IPv4 forwarding, and IPv6 forwarding too with
// ipv6, when Config.IPForward asks for it; it records the families whose
// switch was off, which berth thus turned on, so that later starts in the
// same boot know it; and it sets the firewall's forward guard for those
// families only (see firewall.SetForwardGuard): a host that forwarded
// nothing before berth forwards containers' traffic only, while a host
// that forwarded already keeps forwarding as it did. Callers hold mu, or
// own m alone (New).
func (m *Manager) forwarding(ctx context.Context, ipv6 bool) error {
	boot, err := bootID()
	if err != nil {
		return err
	}
	var rec forwardRecord
	err = m.cfg.DB.View(func(tx *metadata.Tx) error { return tx.GetJSON(kindForwarding, keyForwarding, &rec) })
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("read forwarding record: %w", err)
	}
	if rec.BootID != boot {
		rec = forwardRecord{BootID: boot}
	}
	before := rec
	if m.cfg.IPForward {
		for _, fam := range []struct {
			want   bool
			ipv6   bool
			turned *bool
		}{{true, false, &rec.IPv4}, {ipv6, true, &rec.IPv6}} {
			if !fam.want {
				continue
			}
			changed, err := turnOnForwarding(fam.ipv6)
			if err != nil {
				return err
			}
			*fam.turned = *fam.turned || changed
		}
	}
	if rec != before {
		err := m.cfg.DB.Update(func(tx *metadata.Tx) error { return tx.PutJSON(kindForwarding, keyForwarding, rec) })
		if err != nil {
			return fmt.Errorf("record forwarding: %w", err)
		}
	}
	if err := m.fw.SetForwardGuard(rec.IPv4, rec.IPv6); err != nil {
		if !errdefs.IsNotImplemented(err) || !rec.IPv4 && !rec.IPv6 {
			return err
		}
		log.G(ctx).Warn("network: the kernel cannot run the forward guard; the host forwards between all its interfaces", "error", err)
	}
	return nil
}
