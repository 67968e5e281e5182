package main

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/chimaops/chima/sdk"
)

// logPageWindow is how much of a log the page shows: its last 4 MiB. A page
// travels to the host in one message, which is bounded.
const logPageWindow = 4 << 20

// pages serves /deployments/<id>/log?token=<token>: a deployment's log.
// A browser (Accept: text/html) gets a page with a title block and line
// numbers that follows a running deployment (see serveHTML); anything else
// (curl, Accept: text/plain, ?format=text) gets the plain text, its last
// logPageWindow bytes when it is longer. With &since=<offset> it answers
// the page's poll (see servePoll). Ids are
// sequential and the link is posted to GitHub, so the page answers only
// with the token of logURL; without it, it is 404, as for an unknown id,
// so that it does not confirm which deployments exist; the poll is checked
// the same way.
func (d *deployer) pages() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, "/deployments/")
		idText, tail, _ := strings.Cut(rest, "/")
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil || tail != "log" {
			http.NotFound(w, r)
			return
		}
		c := sdk.PageContext(r)
		if c == nil {
			http.Error(w, "no host", http.StatusInternalServerError)
			return
		}
		secret, err := d.records.pageSecret(c, false)
		if err != nil {
			c.Logger().Error("log page secret", "error", err)
			http.Error(w, "could not check the link", http.StatusInternalServerError)
			return
		}
		token, err := hex.DecodeString(r.URL.Query().Get("token"))
		if secret == nil || err != nil || !hmac.Equal(token, logToken(secret, id)) {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if q.Has("since") || wantsHTML(r) {
			dep, err := d.records.get(c, id)
			if errors.Is(err, ErrNoDeployment) {
				http.NotFound(w, r)
				return
			} else if err != nil {
				c.Logger().Error("log page", "deployment", id, "error", err)
				http.Error(w, "could not read the deployment", http.StatusInternalServerError)
				return
			}
			if q.Has("since") {
				d.servePoll(w, c, dep, q.Get("since"))
			} else {
				d.serveHTML(w, c, dep, hex.EncodeToString(token))
			}
			return
		}
		body, found, err := d.logPage(c, id)
		if err != nil {
			http.Error(w, "could not read the log", http.StatusInternalServerError)
			return
		}
		if !found {
			if _, err := d.records.get(c, id); errors.Is(err, ErrNoDeployment) {
				http.NotFound(w, r)
				return
			} else if err != nil {
				http.Error(w, "could not read the deployment", http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Vary", "Accept")
		_, _ = w.Write(body)
	})
}

// logPage is the page's body: the whole log, or, when it is longer than the
// window, a line saying how much was left out and then the log's end, from
// the start of a line.
func (d *deployer) logPage(c *sdk.Context, id int64) (body []byte, found bool, err error) {
	data, offset, found, err := d.logWindow(c, id)
	if err != nil || !found {
		return nil, found, err
	}
	if offset == 0 {
		return data, true, nil
	}
	// Skip the rest of the line cut in two; provider lines are at most
	// 64 KiB, so there is a line end near the start.
	if i := bytes.IndexByte(data, '\n'); i >= 0 && i+1 < len(data) && i < 64<<10 {
		data = data[i+1:]
		offset += int64(i + 1)
	}
	head := fmt.Sprintf("chima: the first %d bytes of this log are omitted; its last %d bytes follow.\n", offset, len(data))
	return append([]byte(head), data...), true, nil
}

// logWindow reads the part of deployment id's log that a page shows: its
// last logPageWindow bytes (d.pageWindow in tests), which start at byte
// start of the log. found is false when there is no log.
func (d *deployer) logWindow(c *sdk.Context, id int64) (data []byte, start int64, found bool, err error) {
	window := int64(logPageWindow)
	if d.pageWindow > 0 {
		window = d.pageWindow
	}
	_, size, found, err := c.ReadLog(logName(id), 0, 1)
	if err != nil || !found {
		return nil, 0, found, err
	}
	start = max(size-window, 0)
	if size == 0 {
		return nil, 0, true, nil
	}
	data, _, _, err = c.ReadLog(logName(id), start, window)
	return data, start, true, err
}
