# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy kind option, shared by the modules that work inside the proxy pods."""


class ModuleDocFragment:
    """O(kind): which proxy runs in the pods (module_utils/proxy_kinds.py)."""

    DOCUMENTATION = r"""
options:
  kind:
    description:
      - The kind of proxy in the pods, which says what is read and run inside them.
      - V(nginx) - C(nginx -T) (the config on disk), the master and workers from C(/proc), the
        error log; C(nginx -t), then C(nginx -s reload).
      - V(haproxy) - HAProxy in master-worker mode (C(-W)) - C(haproxy -c) and the text of the
        config the master was started with (C(-f)), the runtime API's C(show servers state)
        over the config's C(stats socket) (needs C(socat) in the container), the HTTP log
        lines (C(option httplog)) with their termination states; C(haproxy -c), then the
        master CLI's C(reload) (when the master has C(-S)) or C(kill -USR2) of the master.
      - V(auto) - per pod, the kind its containers' names or images say (C(nginx),
        C(nginx-unprivileged), C(openresty), C(haproxy), ...), else the first kind whose
        version command (C(nginx -v), C(haproxy -v)) runs in one of its containers. Pods of
        one selector (and the targets of a fleet) may be of different kinds.
    type: str
    choices: [auto, nginx, haproxy]
    default: auto
"""
