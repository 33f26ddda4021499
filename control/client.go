package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Client talks to a node's control API. ClientForDir makes one from a
// running node's data directory.
type Client struct {
	Addr   string // host:port, or "unix:PATH"
	Cookie string // sent in CookieHeader when set (TCP)
	// HTTP makes TCP requests; nil: a client with a 60 s timeout. A Unix
	// socket address uses a client of its own with HTTP's timeout.
	HTTP *http.Client

	once sync.Once
	unix *http.Client
}

func (c *Client) http() *http.Client {
	path, isUnix := strings.CutPrefix(c.Addr, UnixPrefix)
	if !isUnix {
		if c.HTTP != nil {
			return c.HTTP
		}
		return &http.Client{Timeout: 60 * time.Second}
	}
	c.once.Do(func() {
		timeout := 60 * time.Second
		if c.HTTP != nil {
			timeout = c.HTTP.Timeout
		}
		var d net.Dialer
		c.unix = &http.Client{Timeout: timeout, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", path)
			},
		}}
	})
	return c.unix
}

// base is the URL prefix: a Unix socket's requests name localhost, as
// curl --unix-socket does.
func (c *Client) base() string {
	if strings.HasPrefix(c.Addr, UnixPrefix) {
		return "http://localhost"
	}
	return "http://" + c.Addr
}

// Status fetches the node's status.
func (c *Client) Status(ctx context.Context) (*StatusReply, error) {
	var st StatusReply
	return &st, c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// Tunnel asks the node to build a tunnel and ping its hops.
func (c *Client) Tunnel(ctx context.Context, req TunnelRequest) (*TunnelReply, error) {
	var rep TunnelReply
	return &rep, c.do(ctx, http.MethodPost, "/v1/tunnels", req, &rep)
}

// CloseTunnel tears a kept tunnel down.
func (c *Client) CloseTunnel(ctx context.Context, id string) error {
	var rep TunnelReply
	return c.do(ctx, http.MethodDelete, "/v1/tunnels/"+url.PathEscape(id), nil, &rep)
}

// Get fetches path (e.g. "/metrics") and returns the body.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return b.Bytes(), err
}

func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	rd := bytes.NewReader(nil)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base()+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Cookie != "" {
		req.Header.Set(CookieHeader, c.Cookie)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s %s: %w: %v", ErrAPI, method, path, ErrNoAnswer, err)
		}
		return nil, fmt.Errorf("%w: %s %s: %v", ErrAPI, method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e errorReply
		json.NewDecoder(resp.Body).Decode(&e)
		return nil, &APIError{Method: method, Path: path, Status: resp.StatusCode, Text: resp.Status, Message: e.Error}
	}
	return resp, nil
}

// ErrNoAnswer: nothing listens at the control address a node recorded
// (it was killed, or the address is wrong).
var ErrNoAnswer = errors.New("nothing answers at the control address (is the node running?)")

// APIError is an error the API answered; it matches ErrAPI (errors.Is).
type APIError struct {
	Method, Path string
	Status       int    // HTTP status code: 404 for an unknown tunnel
	Text         string // "404 Not Found"
	Message      string // the API's "error"
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%v: %s %s: %s: %s", ErrAPI, e.Method, e.Path, e.Text, e.Message)
}

// Is makes errors.Is(err, ErrAPI) hold.
func (e *APIError) Is(target error) bool { return target == ErrAPI }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// PingTunnel pings every hop of an open tunnel once.
func (c *Client) PingTunnel(ctx context.Context, id string) (*TunnelReply, error) {
	return c.PingTunnelN(ctx, id, 1)
}

// PingTunnelN pings every hop of an open tunnel pings times (1..100); a
// ping that is lost is counted in HopReply.Lost.
func (c *Client) PingTunnelN(ctx context.Context, id string, pings int) (*TunnelReply, error) {
	var rep TunnelReply
	return &rep, c.do(ctx, http.MethodPost, "/v1/tunnels/"+url.PathEscape(id)+"/ping", PingRequest{Pings: pings}, &rep)
}

// Tunnels lists the node's open tunnels and its totals.
func (c *Client) Tunnels(ctx context.Context) (*TunnelList, error) {
	var l TunnelList
	return &l, c.do(ctx, http.MethodGet, "/v1/tunnels", nil, &l)
}
