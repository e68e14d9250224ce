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
			fmt.Fprint(c.Out, "Password: ")
			if err := c.In.SetRawTerminal(); err == nil {
				line, _ := r.ReadString('\r')
				c.In.RestoreTerminal()
				fmt.Fprintln(c.Out)
				o.Password = strings.TrimRight(line, "\r\n")
			}
		}
	}
	if o.Username == "" {
		return errors.New("Error: Non-null Username Required")
	}
	if o.Password == "" {
		return errors.New("Error: Password Required")
	}
	key := authKey(o.Server)
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
