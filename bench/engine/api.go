//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// apiVersion is the Engine API version of every direct request: the
// newest dockerd 20.10 speaks, so that both daemons get the same request
// with the same semantics.
const apiVersion = "v1.41"

// apiClient speaks the Engine API over a daemon's unix socket with plain
// net/http, without the docker CLI's start-up cost.
type apiClient struct {
	http *http.Client
}

func newAPIClient(socket string) *apiClient {
	return &apiClient{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
		// The concurrent scenarios keep one connection per request in
		// flight; keep them all for the next round.
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     time.Minute,
	}}}
}

// do sends one request and decodes a JSON answer into out (if not nil).
// Any status but 2xx is an error carrying the daemon's message.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://engine/"+apiVersion+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Message string }
		if json.Unmarshal(raw, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(raw))
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Message)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// create makes a container of img running cmd on network ("none" or
// "default") with the bench's label and returns its ID.
func (c *apiClient) create(ctx context.Context, img string, cmd []string, network string, labels map[string]string) (string, error) {
	body := map[string]any{
		"Image":      img,
		"Cmd":        cmd,
		"Labels":     labels,
		"HostConfig": map[string]any{"NetworkMode": network},
	}
	var out struct{ ID string }
	if err := c.do(ctx, http.MethodPost, "/containers/create", body, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("POST /containers/create: no Id in the answer")
	}
	return out.ID, nil
}

func (c *apiClient) start(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/containers/"+id+"/start", nil, nil)
}

// wait returns the exit code of the container once it is not running.
func (c *apiClient) wait(ctx context.Context, id string) (int, error) {
	var out struct {
		StatusCode int
		Error      *struct{ Message string }
	}
	if err := c.do(ctx, http.MethodPost, "/containers/"+id+"/wait?condition=not-running", nil, &out); err != nil {
		return 0, err
	}
	if out.Error != nil && out.Error.Message != "" {
		return out.StatusCode, fmt.Errorf("wait %s: %s", id, out.Error.Message)
	}
	return out.StatusCode, nil
}

func (c *apiClient) remove(ctx context.Context, id string, force bool) error {
	q := ""
	if force {
		q = "?force=1"
	}
	return c.do(ctx, http.MethodDelete, "/containers/"+id+q, nil, nil)
}

// listed is a container as GET /containers/json shows it.
type listed struct {
	ID    string
	State string
}

// list returns every container (running or not) carrying label k=v.
func (c *apiClient) list(ctx context.Context, label string) ([]listed, error) {
	filters, err := json.Marshal(map[string][]string{"label": {label}})
	if err != nil {
		return nil, err
	}
	var out []listed
	err = c.do(ctx, http.MethodGet, "/containers/json?all=1&filters="+url.QueryEscape(string(filters)), nil, &out)
	return out, err
}
