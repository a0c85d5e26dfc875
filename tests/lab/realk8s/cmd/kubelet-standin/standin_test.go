package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	clientexec "k8s.io/client-go/util/exec"
)

// Three CRI log lines (the format containerd writes), one second apart.
const criLog = "2026-11-30T10:00:01.000000000Z stdout F first line\n" +
	"2026-11-30T10:00:02.000000000Z stderr F second line\n" +
	"2026-11-30T10:00:03.000000000Z stdout F third line\n"

func newTestServer(t *testing.T, containers map[string]container) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	pods := podsFile{Pods: map[string]pod{"lab/web-1": {UID: "uid-1", Containers: containers}}}
	data, err := json.Marshal(pods)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pods.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	server := httptest.NewTLSServer(newMux(registry{path: path}))
	t.Cleanup(server.Close)
	return server
}

func get(t *testing.T, server *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := server.Client().Get(server.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestContainerLogs(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(logFile, []byte(criLog), 0o600); err != nil {
		t.Fatal(err)
	}
	server := newTestServer(t, map[string]container{"app": {PID: os.Getpid(), ID: "c1", Log: logFile}})
	cases := []struct{ query, want string }{
		{"", "first line\nsecond line\nthird line\n"},
		{"tailLines=2", "second line\nthird line\n"},
		{"tailLines=0", ""},
		{"limitBytes=8", "first li"},
		{"sinceTime=2026-11-30T10:00:02Z", "second line\nthird line\n"},
		{"tailLines=1&timestamps=true", "2026-11-30T10:00:03.000000000Z third line\n"},
	}
	for _, c := range cases {
		status, body := get(t, server, "/containerLogs/lab/web-1/app?"+c.query)
		if status != http.StatusOK || body != c.want {
			t.Errorf("?%s: got %d %q, want 200 %q", c.query, status, body, c.want)
		}
	}
	status, body := get(t, server, "/containerLogs/lab/web-1/app?previous=true")
	if status != http.StatusBadRequest || !strings.Contains(body, `previous terminated container "app" in pod "web-1" not found`) {
		t.Errorf("previous without a previous log: got %d %q", status, body)
	}
	if status, _ := get(t, server, "/containerLogs/lab/web-2/app"); status != http.StatusNotFound {
		t.Errorf("unknown pod: got %d, want 404", status)
	}
	if status, _ := get(t, server, "/containerLogs/lab/web-1/app?tailLines=x"); status != http.StatusBadRequest {
		t.Errorf("tailLines=x: got %d, want 400", status)
	}
}

// exec runs cmd through the stand-in with client-go's SPDY executor, the protocol the API
// server speaks to a kubelet when it translates a client's WebSocket exec.
func execIn(t *testing.T, server *httptest.Server, cmd ...string) (string, string, error) {
	t.Helper()
	query := url.Values{"command": cmd, "output": {"1"}, "error": {"1"}}
	target, err := url.Parse(server.URL + "/exec/lab/web-1/app?" + query.Encode())
	if err != nil {
		t.Fatal(err)
	}
	config := &rest.Config{Host: server.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	executor, err := remotecommand.NewSPDYExecutor(config, http.MethodPost, target)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = executor.StreamWithContext(t.Context(), remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	return stdout.String(), stderr.String(), err
}

func TestExecThroughNsenter(t *testing.T) {
	// nsenter needs CAP_SYS_ADMIN even to enter its own namespaces: the lab runs as root.
	if os.Geteuid() != 0 {
		t.Fatal("this test runs nsenter and needs root, as the lab does")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Fatal("nsenter (util-linux) not found: make system-deps installs it")
	}
	// The "pod" is this test process: nsenter enters its (the host's) namespaces.
	server := newTestServer(t, map[string]container{"app": {PID: os.Getpid(), ID: "c1"}})

	stdout, stderr, err := execIn(t, server, "sh", "-c", "echo out; echo err >&2")
	if err != nil || stdout != "out\n" || stderr != "err\n" {
		t.Errorf("echo: got %q %q %v", stdout, stderr, err)
	}

	// client-go's own CodeExitError: the exit code crossed the wire in the v4 status stream.
	_, _, err = execIn(t, server, "sh", "-c", "exit 3")
	var exitErr clientexec.CodeExitError
	if !errors.As(err, &exitErr) || exitErr.Code != 3 {
		t.Errorf("exit 3: got %#v", err)
	}

	_, _, err = execIn(t, server, "no-such-binary-here")
	if err == nil || !strings.Contains(err.Error(), `exec: "no-such-binary-here": executable file not found in $PATH`) {
		t.Errorf("missing binary: got %v", err)
	}
	if errors.As(err, &exitErr) {
		t.Errorf("missing binary: an exit code (%d) instead of an error", exitErr.Code)
	}
}

func TestExecOfAProgramTheImageLacks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs nsenter and needs root, as the lab does")
	}
	// sh exists on the host, but the scenario says this container's image has none.
	server := newTestServer(t, map[string]container{"app": {PID: os.Getpid(), ID: "c1", Missing: []string{"sh"}}})
	_, _, err := execIn(t, server, "/bin/sh", "-c", "exit 0")
	if err == nil || !strings.Contains(err.Error(), `exec: "/bin/sh": executable file not found in $PATH`) {
		t.Errorf("a program the image lacks: got %v", err)
	}
}

func TestAProgramResolvesAlongThePodsPathToAnAbsolutePath(t *testing.T) {
	// A process started without PATH (as the lab starts nginx): the default PATH, /usr/sbin
	// included, and the path handed to nsenter is absolute (nsenter's own search would not
	// look in /usr/sbin).
	path, found := resolveInPod(os.Getpid(), "nsenter", nil)
	if !found || !filepath.IsAbs(path) || filepath.Base(path) != "nsenter" {
		t.Errorf("nsenter without PATH: got %q, %v", path, found)
	}
	if _, found := resolveInPod(os.Getpid(), "nsenter", []string{"PATH=/nonexistent"}); found {
		t.Error("nsenter along PATH=/nonexistent: found")
	}
}

func TestExecGetsTheContainersConfiguredEnvironment(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs nsenter and needs root, as the lab does")
	}
	// Not this process's environment (/proc/PID/environ): the one the pods file gives.
	env := []string{"PATH=/usr/bin:/bin", "LAB_SETTING=configured"}
	server := newTestServer(t, map[string]container{"app": {PID: os.Getpid(), ID: "c1", Env: env}})
	stdout, _, err := execIn(t, server, "sh", "-c", "echo $LAB_SETTING; echo ${HOME:-unset}")
	if err != nil || stdout != "configured\nunset\n" {
		t.Errorf("environment: got %q, %v", stdout, err)
	}
}
