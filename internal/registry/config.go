package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SaveCredentials stores user and password for server (a host, a URL, or ""
// for Docker Hub) in configDir/config.json under "auths", keeping every other
// field of the file. The file is written with mode 0600 and renamed into
// place, so a crash leaves the old or the new file.
func SaveCredentials(configDir, server, user, password string) error {
	if user == "" {
		return invalid("save credentials for %s: empty user name", server)
	}
	key := authKeyFor(server)
	entry, err := json.Marshal(map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	})
	if err != nil {
		return fmt.Errorf("save credentials for %s: %w", key, err)
	}
	return editConfig(configDir, func(auths map[string]json.RawMessage) {
		for k := range auths {
			if normalizeServer(k) == normalizeServer(key) {
				delete(auths, k)
			}
		}
		auths[key] = entry
	})
}

// RemoveCredentials deletes the credentials for server from
// configDir/config.json. Removing credentials that are not there is not an
// error.
func RemoveCredentials(configDir, server string) error {
	key := authKeyFor(server)
	return editConfig(configDir, func(auths map[string]json.RawMessage) {
		for k := range auths {
			if normalizeServer(k) == normalizeServer(key) {
				delete(auths, k)
			}
		}
	})
}

// authKeyFor returns the config.json key for server: Docker Hub's URL or
// the host.
func authKeyFor(server string) string {
	return normalizeServer(server)
}

// editConfig applies edit to the "auths" of configDir/config.json and writes
// the file back atomically, leaving its other fields as they were.
func editConfig(configDir string, edit func(auths map[string]json.RawMessage)) error {
	path := filepath.Join(configDir, "config.json")
	fields := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read docker config %s: %w", path, err)
	default:
		if err := json.Unmarshal(data, &fields); err != nil {
			return invalid("parse docker config %s: %v", path, err)
		}
		if fields == nil {
			fields = map[string]json.RawMessage{}
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := fields["auths"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return invalid("parse auths in docker config %s: %v", path, err)
		}
		if auths == nil {
			auths = map[string]json.RawMessage{}
		}
	}
	edit(auths)
	raw, err := json.Marshal(auths)
	if err != nil {
		return fmt.Errorf("write docker config %s: %w", path, err)
	}
	fields["auths"] = raw
	out, err := json.MarshalIndent(fields, "", "\t")
	if err != nil {
		return fmt.Errorf("write docker config %s: %w", path, err)
	}
	if err := os.MkdirAll(configDir, 0o700); err != nil {
		return fmt.Errorf("write docker config %s: %w", path, err)
	}
	return writeFileAtomic(path, append(out, '\n'), 0o600)
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
