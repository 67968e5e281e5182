package main

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/chimaops/chima/sdk"
)

// pages serves /deployments/<id>/log: the whole log of a deployment, as
// plain text.
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
		data, _, found, err := c.ReadLog(logName(id), 0, 0)
		if err != nil {
			http.Error(w, "could not read the log", http.StatusInternalServerError)
			return
		}
		if !found {
			if _, err := d.records.get(c, id); err != nil {
				http.NotFound(w, r)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(data)
	})
}
