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
      - Can also be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: raw
  context:
    description:
      - The kubeconfig context to use instead of its C(current-context).
      - Can also be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - URL of the Kubernetes API server, for example V(https://10.0.0.1:6443).
      - Can also be set with the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - Bearer token for the API server (with or without the C(Bearer ) prefix).
      - Can also be set with the E(K8S_AUTH_API_KEY) environment variable.
    type: str
  username:
    description:
      - User name for HTTP basic authentication (used together with O(password)).
      - Can also be set with the E(K8S_AUTH_USERNAME) environment variable.
    type: str
  password:
    description:
      - Password for HTTP basic authentication.
      - Can also be set with the E(K8S_AUTH_PASSWORD) environment variable.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate.
      - Defaults to what the kubeconfig says (verify unless C(insecure-skip-tls-verify)).
      - Can also be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to a CA certificate file used to verify the API server.
      - Can also be set with the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate file for TLS client authentication.
      - Can also be set with the E(K8S_AUTH_CERT_FILE) environment variable.
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the key file of O(client_cert).
      - Can also be set with the E(K8S_AUTH_KEY_FILE) environment variable.
    type: path
    aliases: [key_file]
  proxy:
    description:
      - URL of an HTTP proxy to reach the API server through, for example V(http://proxy:3128).
      - Can also be set with the E(K8S_AUTH_PROXY) environment variable.
    type: str
  no_proxy:
    description:
      - Comma-separated hosts, domains (V(.example.com)) or networks (V(10.0.0.0/8)) reached
        without the proxy.
      - Can also be set with the E(K8S_AUTH_NO_PROXY) environment variable.
    type: str
  proxy_headers:
    description:
      - Headers sent to the proxy.
    type: dict
    suboptions:
      proxy_basic_auth:
        description:
          - C(user:password) for the proxy's basic authentication.
          - Can also be set with the E(K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH) environment variable.
        type: str
      basic_auth:
        description:
          - C(user:password) for basic authentication.
          - Can also be set with the E(K8S_AUTH_PROXY_HEADERS_BASIC_AUTH) environment variable.
        type: str
      user_agent:
        description:
          - User-Agent header value.
          - Can also be set with the E(K8S_AUTH_PROXY_HEADERS_USER_AGENT) environment variable.
        type: str
  impersonate_user:
    description:
      - Act as this user (C(Impersonate-User) header). The credentials need C(impersonate) rights.
      - Can also be set with the E(K8S_AUTH_IMPERSONATE_USER) environment variable.
    type: str
  impersonate_groups:
    description:
      - Act as members of these groups (one C(Impersonate-Group) header each).
      - Can also be set with the E(K8S_AUTH_IMPERSONATE_GROUPS) environment variable.
    type: list
    elements: str
  request_timeout:
    description:
      - Seconds allowed for each API request (connect and each read), and for each command run
        in a pod from connection to exit. A call that takes longer fails with a message naming
        the timeout; nothing waits forever.
      - Can also be set with the E(K8S_AUTH_REQUEST_TIMEOUT) environment variable.
    type: float
    default: 10
  max_in_flight:
    description:
      - The most calls (API requests and commands run in pods) in flight at once to the API
        server. Reads that do not depend on each other (the replicas of a proxy, the lists of
        several namespaces) run concurrently up to this bound; the others wait for a free slot.
        Each call is still bounded by O(request_timeout) from when it starts.
      - V(1) makes every call wait for the one before it.
    type: int
    default: 8
  persist_config:
    description:
      - Whether to write a token that the kubeconfig's C(auth-provider) (for example C(oidc))
        refreshed during the run back to the kubeconfig file, as the same option of the
        C(kubernetes.core) modules does. Useful when the identity provider replaces the refresh
        token at each refresh, so that the copy in the file would stop working otherwise.
      - Only a kubeconfig read from a file (O(kubeconfig) as a path, E(KUBECONFIG) or
        C(~/.kube/config)) can be written; a kubeconfig given as a dictionary, O(host) with
        O(api_key), and the in-cluster service account have no file, and then the option has no
        effect. Credentials from an C(exec) plugin are never written.
      - The file is written only when a token was refreshed, also in check mode (it holds
        credentials, not the state of the cluster).
      - Can also be set with the E(K8S_AUTH_PERSIST_CONFIG) environment variable.
    type: bool
    default: false
requirements:
  - kubernetes >= 31.0.0 (Python client, for kubeconfig and in-cluster loading)
  - websocket-client (installed with the kubernetes client; used to run commands in pods)
notes:
  - The options above can be set once for every module of this collection with
    C(module_defaults) and the action group C(group/badgateway.k8s.k8s).
  - The options above set in C(module_defaults) for kubernetes.core's group
    C(group/kubernetes.core.k8s), or for ansible-core's C(group/k8s), apply too, with less
    precedence than the task's own options, C(group/badgateway.k8s.k8s) and the module's own
    defaults. Other options in those groups (such as C(namespace) or C(wait)) are left to
    kubernetes.core's modules. ansible-core refuses a play that names
    C(group/kubernetes.core.k8s) when kubernetes.core is not installed; C(group/k8s) needs no
    other collection.
  - AWX / Automation Platform's Kubernetes credential sets E(K8S_AUTH_HOST),
    E(K8S_AUTH_API_KEY), E(K8S_AUTH_VERIFY_SSL) and E(K8S_AUTH_SSL_CA_CERT); they are honoured.
"""
