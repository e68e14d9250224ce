package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/cli/cli/config/types"
	"github.com/moby/moby/client"
	"github.com/moby/term"
)

// LoginOptions are the options of login.
type LoginOptions struct {
	Server        string
	Username      string
	Password      string
	PasswordStdin bool
}

// Login checks credentials with the registry (through the daemon) and
// stores them in config.json.
func (c *CLI) Login(ctx context.Context, o LoginOptions) error {
	if o.Password != "" {
		fmt.Fprintln(c.Err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
		if o.PasswordStdin {
			return errors.New("--password and --password-stdin are mutually exclusive")
		}
	}
	if o.PasswordStdin {
		if o.Username == "" {
			//lint:ignore ST1005 Docker's wording
			return errors.New("Must provide --username with --password-stdin")
		}
		b, err := io.ReadAll(c.In)
		if err != nil {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	key := authKey(o.Server)
	if o.Username == "" && o.Password == "" {
		// Stored credentials that still work need no prompt.
		if ok, err := c.loginWithStored(ctx, key); err != nil || ok {
			return err
		}
	}
	if o.Username == "" || o.Password == "" {
		if !c.In.IsTerminal() {
			return errors.New("Error: Cannot perform an interactive login from a non TTY device")
		}
		r := bufio.NewReader(c.In)
		if o.Username == "" {
			fmt.Fprint(c.Out, "Username: ")
			line, _ := r.ReadString('\n')
			o.Username = strings.TrimSpace(line)
		}
		if o.Password == "" {
			pw, err := c.readPassword(r)
			if err != nil {
				return err
			}
			o.Password = pw
		}
	}
	if o.Username == "" {
		return errors.New("Error: Non-null Username Required")
	}
	if o.Password == "" {
		return errors.New("Error: Password Required")
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.RegistryLogin(ctx, client.RegistryLoginOptions{Username: o.Username, Password: o.Password, ServerAddress: key})
	if err != nil {
		return c.daemonError(err)
	}
	auth := types.AuthConfig{Username: o.Username, Password: o.Password, ServerAddress: key}
	if res.Auth.IdentityToken != "" {
		auth.Password, auth.IdentityToken = "", res.Auth.IdentityToken
	}
	cf, err := c.ConfigFile()
	if err != nil {
		return err
	}
	if err := cf.GetCredentialsStore(key).Store(auth); err != nil {
		return fmt.Errorf("Error saving credentials: %w", err)
	}
	if err := cf.Save(); err != nil {
		return fmt.Errorf("Error saving credentials: %w", err)
	}
	fmt.Fprintln(c.Out, "Login Succeeded")
	return nil
}

// loginWithStored tries the credentials config.json holds for key; it
// reports whether they worked.
func (c *CLI) loginWithStored(ctx context.Context, key string) (bool, error) {
	a, err := c.authConfig(key)
	if err != nil || (a.Username == "" && a.IdentityToken == "") {
		return false, err
	}
	cl, err := c.Client()
	if err != nil {
		return false, err
	}
	fmt.Fprintln(c.Out, "Authenticating with existing credentials...")
	if _, err := cl.RegistryLogin(ctx, client.RegistryLoginOptions{Username: a.Username, Password: a.Password,
		ServerAddress: key, IdentityToken: a.IdentityToken}); err != nil {
		if client.IsErrConnectionFailed(err) {
			return false, c.daemonError(err)
		}
		fmt.Fprintf(c.Err, "Login did not succeed, error: %v\n", err)
		return false, nil
	}
	fmt.Fprintln(c.Out, "Login Succeeded")
	return true, nil
}

// Logout removes the stored credentials of a registry.
func (c *CLI) Logout(ctx context.Context, server string) error {
	key := authKey(server)
	cf, err := c.ConfigFile()
	if err != nil {
		return err
	}
	if _, ok := cf.AuthConfigs[key]; !ok {
		fmt.Fprintf(c.Out, "Not logged in to %s\n", key)
		return nil
	}
	fmt.Fprintf(c.Out, "Removing login credentials for %s\n", key)
	if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
		return fmt.Errorf("could not erase credentials for %s: %w", key, err)
	}
	return cf.Save()
}

// readPassword prompts for a password and reads it from r with the
// terminal's echo off. Echo goes off before the prompt is shown, so a
// password typed as soon as the prompt appears is never echoed, and the
// same buffered reader as the username's is used, so nothing typed ahead
// is lost.
func (c *CLI) readPassword(r *bufio.Reader) (string, error) {
	state, err := term.SaveState(c.In.fd)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if err := term.DisableEcho(c.In.fd, state); err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	defer func() { _ = term.RestoreTerminal(c.In.fd, state) }()
	fmt.Fprint(c.Out, "Password: ")
	line, err := r.ReadString('\n')
	fmt.Fprintln(c.Out)
	if err != nil && line == "" {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
