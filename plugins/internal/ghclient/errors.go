package ghclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
)

// InstallationError says why the GitHub App's installation token could not
// be had for what ("the deployment of owner/repo"): GitHub refused the
// app's JWT (another app's key, a wrong app id) or knows no such
// installation, or could not be reached. It is nil when err is no failed
// token exchange, for the caller's own explanation of err. The key is never
// quoted.
func InstallationError(what string, err error) error {
	var e *ghinstallation.HTTPError
	if !errors.As(err, &e) {
		return nil
	}
	if e.Response == nil {
		return fmt.Errorf("could not reach GitHub for the GitHub App's installation token, needed for %s: %v", what, e.RootCause)
	}
	// ghinstallation leaves the answer's body to its caller.
	msg := e.Response.Status
	if e.Response.Body != nil {
		var body struct {
			Message string `json:"message"`
		}
		raw, _ := io.ReadAll(io.LimitReader(e.Response.Body, 4096))
		e.Response.Body.Close()
		if json.Unmarshal(raw, &body) == nil && body.Message != "" {
			msg = fmt.Sprintf("%d %s", e.Response.StatusCode, body.Message)
		}
		// Put it back, for a second explanation of the same error.
		e.Response.Body = io.NopCloser(bytes.NewReader(raw))
	}
	hint := fmt.Sprintf("check %s and that the secret %s is a private key of that app", SettingAppID, SecretPrivateKey)
	if e.Response.StatusCode == http.StatusNotFound {
		hint = fmt.Sprintf("check %s: the app is not installed there", SettingInstallationID)
	}
	return fmt.Errorf("GitHub gave the GitHub App no installation token for %s (%s): %s", what, msg, hint)
}

// bufferRefusals reads the body of a refused token exchange into memory and
// closes the connection's: ghinstallation hands a refusal back with its
// body open, for its caller to read, and a caller that does not would
// leak the connection.
type bufferRefusals struct{ base http.RoundTripper }

// RoundTrip sends req; a token exchange answered other than 2xx comes
// back with its body read.
func (b bufferRefusals) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(req)
	if err != nil || resp.StatusCode/100 == 2 || !strings.HasSuffix(req.URL.Path, "/access_tokens") {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read GitHub's refusal of the installation token: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
