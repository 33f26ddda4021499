package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Client talks to a node's control API.
type Client struct {
	Addr string // host:port
	HTTP *http.Client
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 60 * time.Second}
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

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Addr+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrAPI, method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e errorReply
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%w: %s %s: %s: %s", ErrAPI, method, path, resp.Status, e.Error)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// PingTunnel pings every hop of a kept tunnel.
func (c *Client) PingTunnel(ctx context.Context, id string) (*TunnelReply, error) {
	var rep TunnelReply
	return &rep, c.do(ctx, http.MethodPost, "/v1/tunnels/"+id+"/ping", nil, &rep)
}
