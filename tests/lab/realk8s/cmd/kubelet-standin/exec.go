package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// The kubelet's defaults: --streaming-connection-idle-timeout and the stream creation timeout.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = 30 * time.Second
	defaultPath           = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

func serveExec(reg registry, w http.ResponseWriter, r *http.Request) {
	namespace, podName, containerName := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	// Which protocol the API server chose for this hop (SPDY when it translates a WebSocket).
	log.Printf("exec %s/%s/%s: Upgrade %q, protocols %q", namespace, podName, containerName,
		r.Header.Get("Upgrade"), r.Header.Values("X-Stream-Protocol-Version"))
	p, _, err := reg.lookup(namespace, podName, containerName)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, errNotFound) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	remotecommand.ServeExec(w, r, nsenterExecutor{reg: reg, namespace: namespace}, podName, p.UID, containerName,
		r.URL.Query()["command"], opts, streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// nsenterExecutor runs a command in a lab pod: nsenter into the mount and network namespaces
// of the container's process, with the container's configured environment (as runc's exec
// takes the container spec's env): not the process's current /proc/PID/environ, which a
// process may have changed (HAProxy's master re-executes itself with HAPROXY_MWORKER_* set, and
// `haproxy -c` run with those believes it is a re-executed master).
type nsenterExecutor struct {
	reg       registry
	namespace string
}

func (e nsenterExecutor) ExecInContainer(ctx context.Context, podName, _ string, containerName string, cmd []string,
	in io.Reader, out, errOut io.WriteCloser, tty bool, _ <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if tty {
		return errors.New("the lab's kubelet stand-in does not allocate a TTY")
	}
	if len(cmd) == 0 {
		return errors.New("no command given")
	}
	_, c, err := e.reg.lookup(e.namespace, podName, containerName)
	if err != nil {
		return err
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", c.PID)); c.PID <= 0 || err != nil {
		return fmt.Errorf("container %q in pod %q is not running", containerName, podName)
	}
	env := c.Env
	program, found := resolveInPod(c.PID, cmd[0], env)
	if !found || slices.Contains(c.Missing, filepath.Base(cmd[0])) {
		// The text containerd's runc shim returns for a missing binary.
		return fmt.Errorf("OCI runtime exec failed: exec failed: unable to start container process: exec: %q: executable file not found in $PATH: unknown", cmd[0])
	}
	// The resolved path: nsenter's own search would use its environment's PATH (or libc's
	// default without one), not the one the container's process has.
	args := append([]string{"--target", strconv.Itoa(c.PID), "--mount", "--net", "--", program}, cmd[1:]...)
	command := exec.CommandContext(ctx, "nsenter", args...)
	command.Env = env
	if in != nil {
		command.Stdin = in
	}
	if out != nil {
		command.Stdout = out
	}
	if errOut != nil {
		command.Stderr = errOut
	}
	err = command.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() >= 0 {
		// remotecommand.ServeExec reports a non-zero exit code only for a utilexec.ExitError
		// value (a type assertion, not errors.As): hand it one.
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}

// resolveInPod finds name as an executable file in the pod's own file system (/proc/PID/root),
// searched along the pod process's PATH as a container runtime does: its path in the pod.
func resolveInPod(pid int, name string, env []string) (string, bool) {
	root := fmt.Sprintf("/proc/%d/root", pid)
	executable := func(path string) bool {
		info, err := os.Stat(filepath.Join(root, path))
		return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
	}
	if strings.Contains(name, "/") {
		return name, executable(name)
	}
	path := defaultPath
	for _, kv := range env {
		if value, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = value
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir != "" && executable(filepath.Join(dir, name)) {
			return filepath.Join(dir, name), true
		}
	}
	return "", false
}
