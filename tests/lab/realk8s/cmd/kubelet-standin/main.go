// Command kubelet-standin serves the two kubelet endpoints the lab's API server calls through:
// exec and containerLogs. Groundwork of issue 11: a skeleton that the real tier's lab will start
// beside kube-apiserver, named in the Node's status.daemonEndpoints.kubeletEndpoint.Port.
//
// The streaming protocols (SPDY remotecommand v1 to v4, WebSocket v4) are upstream's own, from
// k8s.io/cri-streaming, the library containerd serves exec with; the log reader is upstream's
// CRI log reader from k8s.io/cri-client. What is ours: where a pod's processes and log files are
// (the lab's pods file, re-read on every request) and how a command enters the pod (nsenter).
//
// Pods file (JSON), written by the lab, replaced atomically:
//
//	{"pods": {"NAMESPACE/POD": {"uid": "...", "containers": {"NAME": {
//	    "pid": 1234, "id": "container id", "log": "/path/0.log", "previousLog": "/path/prev.log",
//	    "missing": ["curl"], "env": ["PATH=/usr/bin:/bin"]}}}}}
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

type container struct {
	PID         int    `json:"pid"`
	ID          string `json:"id"`
	Log         string `json:"log"`
	PreviousLog string `json:"previousLog"`
	// Programs the scenario says this container's image lacks (the lab's pods share the host's
	// file system): an exec of one of them fails as a missing binary does.
	Missing []string `json:"missing"`
	// The environment the lab started the container with ("NAME=value"): an exec gets it.
	Env []string `json:"env"`
}

type pod struct {
	UID        string               `json:"uid"`
	Containers map[string]container `json:"containers"`
}

type podsFile struct {
	Pods map[string]pod `json:"pods"`
}

// registry reads the lab's pods file afresh on each lookup: the lab rewrites it whenever a
// container starts, restarts or stops.
type registry struct{ path string }

var errNotFound = errors.New("not found")

func (r registry) lookup(namespace, podName, containerName string) (pod, container, error) {
	data, err := os.ReadFile(r.path)
	if err != nil {
		return pod{}, container{}, err
	}
	var file podsFile
	if err := json.Unmarshal(data, &file); err != nil {
		return pod{}, container{}, fmt.Errorf("pods file %s: %w", r.path, err)
	}
	p, ok := file.Pods[namespace+"/"+podName]
	if !ok {
		return pod{}, container{}, fmt.Errorf("pod %q: %w", namespace+"/"+podName, errNotFound)
	}
	c, ok := p.Containers[containerName]
	if !ok {
		return p, container{}, fmt.Errorf("container %q in pod %q: %w", containerName, podName, errNotFound)
	}
	return p, c, nil
}

func newMux(reg registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	exec := func(w http.ResponseWriter, r *http.Request) { serveExec(reg, w, r) }
	mux.HandleFunc("GET /exec/{namespace}/{pod}/{container}", exec)
	mux.HandleFunc("POST /exec/{namespace}/{pod}/{container}", exec)
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		serveLogs(reg, w, r)
	})
	return mux
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	portFile := flag.String("port-file", "", "write the port listened on to this file")
	certFile := flag.String("tls-cert-file", "", "serving certificate (PEM)")
	keyFile := flag.String("tls-private-key-file", "", "serving key (PEM)")
	clientCA := flag.String("client-ca-file", "", "if set, require client certificates signed by this CA (the API server's kubelet client certificate)")
	pods := flag.String("pods", "", "the lab's pods file (JSON)")
	flag.Parse()
	if *certFile == "" || *keyFile == "" || *pods == "" {
		log.Fatal("kubelet-standin: --tls-cert-file, --tls-private-key-file and --pods are required")
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("kubelet-standin: --listen must be a loopback address, not %q", *listen)
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if *clientCA != "" {
		pem, err := os.ReadFile(*clientCA)
		if err != nil {
			log.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			log.Fatalf("kubelet-standin: no certificate in %s", *clientCA)
		}
		tlsConfig.ClientCAs = pool
		tlsConfig.ClientAuth = tls.RequireAndVerifyClientCert
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if *portFile != "" {
		tmp := *portFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, *portFile); err != nil {
			log.Fatal(err)
		}
	}
	server := &http.Server{
		Handler:           newMux(registry{path: *pods}),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.Background() },
	}
	log.Printf("kubelet-standin: listening on %s", ln.Addr())
	log.Fatal(server.ServeTLS(ln, *certFile, *keyFile))
}
