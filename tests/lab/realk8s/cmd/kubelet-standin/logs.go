package main

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"time"

	crilogs "k8s.io/cri-client/pkg/logs"
)

// serveLogs answers GET /containerLogs/{namespace}/{pod}/{container} with the query the API
// server sends: tailLines, limitBytes, sinceSeconds, sinceTime, timestamps, previous, follow.
func serveLogs(reg registry, w http.ResponseWriter, r *http.Request) {
	namespace, podName, containerName := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	q := r.URL.Query()
	opts := &crilogs.LogOptions{Timestamp: q.Get("timestamps") == "true"}
	badRequest := func(format string, args ...any) { http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest) }
	if q.Get("follow") == "true" {
		http.Error(w, "follow is not served by the lab's kubelet stand-in yet", http.StatusNotImplemented)
		return
	}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			badRequest("tailLines: %q is not a number >= 0", v)
			return
		}
		opts.TailLines = &n
	}
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			badRequest("limitBytes: %q is not a number >= 1", v)
			return
		}
		opts.LimitBytes = &n
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			badRequest("sinceSeconds: %q is not a number >= 1", v)
			return
		}
		opts.Since = time.Now().Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			badRequest("sinceTime: %q is not an RFC 3339 time", v)
			return
		}
		opts.Since = t
	}

	_, c, err := reg.lookup(namespace, podName, containerName)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, errNotFound) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	path := c.Log
	if q.Get("previous") == "true" {
		if c.PreviousLog == "" {
			// The kubelet's words (validateContainerLogStatus).
			badRequest("previous terminated container %q in pod %q not found", containerName, podName)
			return
		}
		path = c.PreviousLog
	}
	w.Header().Set("Content-Type", "text/plain")
	// ReadLogs asks the runtime service only when following, which is refused above.
	if err := crilogs.ReadLogs(r.Context(), path, c.ID, opts, nil, w, w); err != nil {
		log.Printf("kubelet-standin: logs of %s/%s/%s: %v", namespace, podName, containerName, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
