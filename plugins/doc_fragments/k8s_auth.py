# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes connection options shared by every module that talks to a cluster."""


class ModuleDocFragment:
    """The auth options, with the same names and K8S_AUTH_* variables as kubernetes.core."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig content as a dictionary.
      - Several files may be given as one string separated by C(:), as in E(KUBECONFIG).
      - Where the connection comes from, first match wins. Options given to the task (or their
        E(K8S_AUTH_*) variables) override the matching kubeconfig values. Without O(kubeconfig)
        and without O(host), the file named by E(KUBECONFIG) or C(~/.kube/config) is read;
        if neither exists, the in-cluster service account is used (when running in a pod).
    type: raw
    env:
      - name: K8S_AUTH_KUBECONFIG
  context:
    description:
      - The kubeconfig context to use instead of its C(current-context).
    type: str
    env:
      - name: K8S_AUTH_CONTEXT
  host:
    description:
      - URL of the Kubernetes API server, for example V(https://10.0.0.1:6443).
    type: str
    env:
      - name: K8S_AUTH_HOST
  api_key:
    description:
      - Bearer token for the API server (with or without the C(Bearer ) prefix).
    type: str
    env:
      - name: K8S_AUTH_API_KEY
  username:
    description:
      - User name for HTTP basic authentication (used together with O(password)).
    type: str
    env:
      - name: K8S_AUTH_USERNAME
  password:
    description:
      - Password for HTTP basic authentication.
    type: str
    env:
      - name: K8S_AUTH_PASSWORD
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate.
      - Defaults to what the kubeconfig says (verify unless C(insecure-skip-tls-verify)).
    type: bool
    aliases: [verify_ssl]
    env:
      - name: K8S_AUTH_VERIFY_SSL
  ca_cert:
    description:
      - Path to a CA certificate file used to verify the API server.
    type: path
    aliases: [ssl_ca_cert]
    env:
      - name: K8S_AUTH_SSL_CA_CERT
  client_cert:
    description:
      - Path to a client certificate file for TLS client authentication.
    type: path
    aliases: [cert_file]
    env:
      - name: K8S_AUTH_CERT_FILE
  client_key:
    description:
      - Path to the key file of O(client_cert).
    type: path
    aliases: [key_file]
    env:
      - name: K8S_AUTH_KEY_FILE
  proxy:
    description:
      - URL of an HTTP proxy to reach the API server through, for example V(http://proxy:3128).
    type: str
    env:
      - name: K8S_AUTH_PROXY
  no_proxy:
    description:
      - Comma-separated hosts, domains (V(.example.com)) or networks (V(10.0.0.0/8)) reached
        without the proxy.
    type: str
    env:
      - name: K8S_AUTH_NO_PROXY
  proxy_headers:
    description:
      - Headers sent to the proxy.
    type: dict
    suboptions:
      proxy_basic_auth:
        description:
          - C(user:password) for the proxy's basic authentication.
        type: str
        env:
          - name: K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH
      basic_auth:
        description:
          - C(user:password) for basic authentication.
        type: str
        env:
          - name: K8S_AUTH_PROXY_HEADERS_BASIC_AUTH
      user_agent:
        description:
          - User-Agent header value.
        type: str
        env:
          - name: K8S_AUTH_PROXY_HEADERS_USER_AGENT
  impersonate_user:
    description:
      - Act as this user (C(Impersonate-User) header). The credentials need C(impersonate) rights.
    type: str
    env:
      - name: K8S_AUTH_IMPERSONATE_USER
  impersonate_groups:
    description:
      - Act as members of these groups (one C(Impersonate-Group) header each).
    type: list
    elements: str
    env:
      - name: K8S_AUTH_IMPERSONATE_GROUPS
  request_timeout:
    description:
      - Seconds allowed for each API request (connect and each read), and for each command run
        in a pod from connection to exit. A call that takes longer fails with a message naming
        the timeout; nothing waits forever.
    type: float
    default: 10
    env:
      - name: K8S_AUTH_REQUEST_TIMEOUT
requirements:
  - kubernetes >= 31.0.0 (Python client, for kubeconfig and in-cluster loading)
  - websocket-client (installed with the kubernetes client; used to run commands in pods)
notes:
  - The options above can be set once for every module of this collection with
    C(module_defaults) and the action group C(group/badgateway.k8s.k8s).
  - AWX / Automation Platform's Kubernetes credential sets E(K8S_AUTH_HOST),
    E(K8S_AUTH_API_KEY), E(K8S_AUTH_VERIFY_SSL) and E(K8S_AUTH_SSL_CA_CERT); they are honoured.
"""
