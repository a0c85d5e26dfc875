# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for nginx_log, on lines a real nginx 1.22 wrote (see fixtures/README.md)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import (
    ERROR_SIGNATURES,
    NOT_UPSTREAM_SIGNATURES,
    SECONDARY_SIGNATURES,
    SIGNATURES,
    about_upstream,
    format_time,
    line_time,
    lines_since,
    merge_logs,
    parse_access_line,
    parse_error_line,
    parse_line,
    parse_time,
    parse_utc_offset,
    split_k8s_timestamp,
    summarize,
    upstream_address,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture_lines(name):
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        return handle.read().decode("utf-8").splitlines()


def fixture_generator(name):
    """The fixture script ``name`` (tests/unit/fixtures/NAME.py) as a module, after checking
    that the real nginx it runs is there (a test that needs nginx fails without it)."""
    nginx = os.environ.get("NGINX", "/usr/sbin/nginx")
    assert os.access(nginx, os.X_OK), (
        "nginx not found at %s: install it (apt-get install nginx-light) or set "
        "NGINX=/path/to/nginx" % nginx
    )
    spec = importlib.util.spec_from_file_location(name, os.path.join(FIXTURES, name + ".py"))
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    return generator


def real_line(needle):
    """The single line of the real error log that contains ``needle``."""
    hits = [line for line in fixture_lines("nginx_error.log") if needle in line]
    assert len(hits) >= 1, "fixture has no line with %r" % needle
    return hits[0]


# (needle in the real log, signature, errno, phase, upstream address)
REAL_CASES = [
    ("GET /refused", "connect_refused", 111, "connecting to upstream", "127.77.0.3:8081"),
    (
        "recv() failed (104",
        "reset",
        104,
        "reading response header from upstream",
        "127.77.0.4:8082",
    ),
    (
        "GET /premature",
        "premature_close",
        None,
        "reading response header from upstream",
        "127.77.0.5:8083",
    ),
    (
        "too big header",
        "header_too_big",
        None,
        "reading response header from upstream",
        "127.77.0.6:8084",
    ),
    (
        "upstream sent invalid header",
        "invalid_header",
        None,
        "reading response header from upstream",
        "127.77.0.7:8085",
    ),
    (
        "no valid HTTP/1.0 header",
        "invalid_header",
        None,
        "reading response header from upstream",
        "127.77.0.8:8086",
    ),
    (
        "SSL_do_handshake() failed",
        "ssl_handshake",
        None,
        "SSL handshaking to upstream",
        "127.77.0.2:8080",
    ),
    (
        "certificate verify error",
        "ssl_verify",
        None,
        "SSL handshaking to upstream",
        "127.77.0.9:8443",
    ),
    (
        "upstream timed out (110: Connection timed out) while reading response header",
        "upstream_timeout",
        110,
        "reading response header from upstream",
        "127.77.0.10:8087",
    ),
    ("GET /connect-timeout", "connect_timeout", 110, "connecting to upstream", "127.77.0.11:8088"),
    (
        'while sending request to upstream, client: 127.0.0.1, server: lab.example, request: "POST',
        "upstream_timeout",
        110,
        "sending request to upstream",
        "127.77.0.14:8092",
    ),
    ("GET /short-body", "premature_close", None, "reading upstream", "127.77.0.12:8090"),
    ("readv() failed (104", "reset", 104, "reading upstream", "127.77.0.13:8091"),
    ("temporarily disabled", "server_disabled", None, "connecting to upstream", "127.77.0.3:8081"),
    ("no live upstreams", "no_live_upstreams", None, "connecting to upstream", "backend_grp"),
    ("(3: Host not found)", "dns_not_found", 3, None, None),
    ("(110: Operation timed out), client", "dns_not_found", 110, None, None),
    ("no resolver defined", "no_resolver", None, None, None),
    ("host not found in upstream", "host_not_found", None, None, None),
    (
        "client prematurely closed",
        "client_closed",
        None,
        "sending request to upstream",
        "127.77.0.10:8087",
    ),
    ("start worker processes", "reload", None, None, None),
    (": reconfiguring", "reload_signal", None, None, None),
]


@pytest.mark.parametrize("needle,signature,errno,phase,address", REAL_CASES)
def test_real_nginx_lines(needle, signature, errno, phase, address):
    entry = parse_error_line(real_line(needle))
    assert entry["signature"] == signature
    assert entry["errno"] == errno
    assert entry["phase"] == phase
    assert entry["upstream_address"] == address
    assert entry["time_source"] == "nginx"
    assert entry["time"].startswith("2026-11-25T")


def test_fields_of_a_connect_refused_line():
    entry = parse_error_line(real_line("GET /refused"))
    assert entry["level"] == "error"
    assert isinstance(entry["pid"], int) and entry["pid"] == entry["tid"]
    assert isinstance(entry["cid"], int)
    assert entry["message"] == (
        "connect() failed (111: Connection refused) while connecting to upstream"
    )
    assert entry["errno_text"] == "Connection refused"
    assert entry["client"] == "127.0.0.1"
    assert entry["server"] == "lab.example"
    assert entry["request"] == "GET /refused HTTP/1.1"
    assert entry["upstream"] == "http://127.77.0.3:8081/refused"
    assert entry["host"] == "lab.example"


def test_message_with_comma_keeps_its_context():
    entry = parse_error_line(real_line("client prematurely closed"))
    assert entry["message"].startswith(
        "epoll_wait() reported that client prematurely closed "
        "connection, so upstream connection is closed too"
    )
    assert entry["server"] == "lab.example"


def test_dns_lines_name_the_host():
    assert (
        parse_error_line(real_line("(3: Host not found)"))["name"]
        == "nosuch-svc.lab.svc.cluster.local"
    )
    assert (
        parse_error_line(real_line("no resolver defined"))["name"]
        == "nosuch-svc.lab.svc.cluster.local"
    )
    emerg = parse_error_line(real_line("host not found in upstream"))
    assert emerg["level"] == "emerg"
    assert emerg["name"] == "nosuch-svc.invalid"


def test_nginx_t_stderr_is_parsed():
    lines = fixture_lines("nginx_t_failed.txt")
    parsed = [parse_error_line(line) for line in lines]
    assert parsed[0]["signature"] == "host_not_found"
    assert parsed[1] is None  # "nginx: configuration file … test failed" is not a log record


def test_errno_matched_by_number_not_text():
    """musl and glibc texts for the same errno give the same signature."""
    lines = fixture_lines("nginx_error_handwritten.log")
    musl, glibc = parse_error_line(lines[0]), parse_error_line(lines[1])
    assert musl["errno_text"] == "Host is unreachable"
    assert glibc["errno_text"] == "No route to host"
    assert musl["signature"] == glibc["signature"] == "connect_unreachable"
    musl_timeout = parse_error_line(lines[2])
    assert musl_timeout["errno"] == 110
    assert musl_timeout["signature"] == "connect_timeout"
    # the same numbers with invented texts still classify the same
    for text in ("Connection refused", "Verbindungsaufbau abgelehnt"):
        line = lines[0].replace("113: Host is unreachable", "111: " + text)
        assert parse_error_line(line)["signature"] == "connect_refused"


def test_synchronous_connect_to_form():
    lines = fixture_lines("nginx_error_handwritten.log")
    sync = parse_error_line(lines[3])
    assert sync["signature"] == "connect_refused"
    assert sync["upstream_address"] == "10.244.1.19:8080"
    ipv6 = parse_error_line(lines[4])
    assert ipv6["level"] == "crit"
    assert ipv6["signature"] == "connect_error"
    assert ipv6["upstream_address"] == "[fd00:10:244::7]:8080"


def test_other_handwritten_variants():
    lines = fixture_lines("nginx_error_handwritten.log")
    assert parse_error_line(lines[5])["signature"] == "connect_unreachable"  # 101
    assert parse_error_line(lines[6])["signature"] == "reset"  # 32 broken pipe, upstream
    assert parse_error_line(lines[7])["signature"] == "ssl_verify"
    stderr = parse_error_line(lines[8])
    assert stderr["signature"] == "host_not_found"
    assert stderr["time"] is None and stderr["pid"] is None
    assert stderr["name"] == "open-webui.open-webui.svc.cluster.local:8080"


def test_client_side_errors_are_not_upstream_errors():
    line = (
        "2026/11/25 02:21:05 [info] 7#7: *9 recv() failed (104: Connection reset by peer) "
        "while reading client request line, client: 10.0.0.1, server: _"
    )
    entry = parse_error_line(line)
    assert entry["signature"] == "info"
    assert entry["signature"] not in ERROR_SIGNATURES


def test_k8s_timestamp_prefix_is_kept_as_utc_time():
    line = "2026-11-25T02:21:05.123456789Z " + real_line("GET /refused")
    entry = parse_error_line(line)
    assert entry["time"] == "2026-11-25T02:21:05.123456Z"
    assert entry["time_source"] == "k8s"
    assert entry["nginx_time"].startswith("2026/11/25 ")
    stamp, rest = split_k8s_timestamp("2026-11-25T02:21:05Z stderr F hello")
    assert (stamp, rest) == ("2026-11-25T02:21:05Z", "hello")
    assert split_k8s_timestamp(b"no prefix\n") == (None, "no prefix")


def test_parse_time_formats():
    assert format_time("2026-11-25T02:21:05.5+02:00") == "2026-11-25T00:21:05.500000Z"
    assert format_time("2026/11/25 02:21:05") == "2026-11-25T02:21:05Z"
    assert format_time("2026-11-25T02:21:05.5Z") == "2026-11-25T02:21:05.500000Z"
    assert format_time("2026-11-25T02:21:05.000000001Z") == "2026-11-25T02:21:05Z"
    assert format_time("25/Nov/2026:02:21:05 -0100") == "2026-11-25T03:21:05Z"
    assert parse_time("yesterday") is None
    assert parse_time("2026-13-45T99:00:00Z") is None
    assert parse_time(42) is None


def test_upstream_address_forms():
    assert upstream_address("http://10.0.0.5:8080/x") == "10.0.0.5:8080"
    assert upstream_address("http://10.0.0.5/x") == "10.0.0.5:80"
    assert upstream_address("https://10.0.0.5") == "10.0.0.5:443"
    assert upstream_address("http://[fd00::5]:8080/") == "[fd00::5]:8080"
    assert upstream_address("http://[fd00::5]/") == "[fd00::5]:80"
    assert upstream_address("http://backend_grp/group") == "backend_grp"
    assert upstream_address("http://unix:/run/app.sock:/x") == "unix:/run/app.sock"
    assert upstream_address("") is None


def test_not_nginx_lines_give_none():
    for line in (
        "",
        "I1125 02:21:05.1 7 controller.go:190] Configuration changes detected",
        "random text",
        "2026/11/25 02:21:05 [bogus",
    ):
        assert parse_line(line) is None


def test_access_combined_real():
    lines = fixture_lines("nginx_access_combined.log")
    first = parse_access_line(lines[0])
    assert first["status"] == 200
    assert first["request"] == "GET /ok HTTP/1.1"
    assert first["upstream_status"] is None
    statuses = [parse_access_line(line)["status"] for line in lines]
    assert statuses.count(502) == sum('" 502 ' in line for line in lines) == 14
    assert 504 in statuses


def test_access_ingress_real():
    lines = fixture_lines("nginx_access_ingress.log")
    parsed = [parse_access_line(line) for line in lines]
    assert all(parsed)
    ok = parsed[0]
    assert ok["upstream_name"] == "lab-ok-8080"
    assert ok["upstream_addresses"] == ["127.77.0.2:8080"]
    assert ok["upstream_status"] == 200
    assert len(ok["req_id"]) == 32
    tried = ["127.77.0.3:8081", "127.77.0.3:8089"]
    group = next(p for p in parsed if p["upstream_addresses"] == tried)
    assert group["upstream_statuses"] == [502, 502]
    nx = next(p for p in parsed if p["request"] == "GET /nxdomain HTTP/1.1")
    assert nx["upstream_addresses"] == [] and nx["upstream_status"] is None
    named = next(p for p in parsed if p["upstream_addresses"] == ["backend_grp"])
    assert named["status"] == 502


def test_summarize_real_log_reload_from_log():
    result = summarize(fixture_lines("nginx_error.log"))
    assert result["reloads"] == 3  # start, -s reload, SIGHUP back to a good config
    assert result["reload_attempts"] == 3  # -s reload, bad SIGHUP, good SIGHUP
    assert result["failed_reloads"] == 1  # the host-not-found one
    assert result["reload_source"] == "log"
    # after the last reload only /refused was requested
    assert result["counts_after_reload"]["connect_refused"] == 1
    assert result["errors_after_reload"] == 1
    assert result["counts"]["connect_refused"] == 4
    by_addr = {a["address"]: a for a in result["upstream_addresses"]}
    assert by_addr["127.77.0.3:8081"]["after_reload"] is True
    assert by_addr["127.77.0.3:8081"]["count_after_reload"] == 1
    assert by_addr["127.77.0.4:8082"]["after_reload"] is False
    assert by_addr["backend_grp"]["signatures"] == {"no_live_upstreams": 1}
    assert result["unresolved_names"] == ["nosuch-svc.invalid", "nosuch-svc.lab.svc.cluster.local"]
    assert [e["after_reload"] for e in result["errors"]][-1] is True
    assert sum(1 for e in result["errors"] if e["after_reload"]) == 1


def test_summarize_explicit_reload_time_and_since():
    lines = ["2026-11-25T10:00:%02dZ %s" % (i, real_line("GET /refused")) for i in range(10)]
    result = summarize(lines, reload_time="2026-11-25T10:00:05Z")
    assert result["counts"]["connect_refused"] == 10
    assert result["counts_after_reload"]["connect_refused"] == 5
    assert result["reload_source"] == "argument"
    result = summarize(lines, since="2026-11-25T10:00:08Z")
    assert result["counts"]["connect_refused"] == 2
    assert result["skipped_lines"] == 8
    assert result["reload_known"] is False
    assert result["errors_after_reload"] == 2


def test_summarize_caps_errors_and_tolerates_garbage():
    refused = real_line("GET /refused").encode()
    lines = [b"\xff\xfe garbage \xc3\x28\n", refused + b"\n"] * 100
    lines += [line.encode() for line in fixture_lines("nginx_access_ingress.log")]
    lines.append(
        b"2026/11/25 02:26:40 [error] 1#1: *3 connect() failed (111: \xff) while "
        b"connecting to upstream, client: 1.2.3.4, server: s, upstream: "
        b'"http://10.1.2.3:80/", host: "h"'
    )
    result = summarize(iter(lines), max_errors=5)
    assert result["lines_read"] == len(lines)
    assert result["bytes_read"] == sum(len(line) for line in lines)
    assert len(result["errors"]) == 5
    assert result["counts"]["connect_refused"] == 101
    assert result["errors"][-1]["upstream_address"] == "10.1.2.3:80"
    assert result["access"]["requests"] == len(fixture_lines("nginx_access_ingress.log"))
    assert result["access"]["status_counts"]["502"] == 14
    assert result["access"]["upstream_status_counts"]["200"] >= 1
    tried = {a["address"]: a for a in result["access"]["upstream_addresses"]}
    assert tried["127.77.0.3:8089"]["status_counts"] == {"502": 1}


def test_summarize_many_unrelated_lines_and_address_cap():
    def stream():
        for i in range(30000):
            yield "unrelated application line %d" % i
        for i in range(20):
            yield real_line("GET /refused").replace("127.77.0.3:8081", "10.0.0.%d:80" % i)

    result = summarize(stream(), max_addresses=10)
    assert result["lines_read"] == 30020
    assert len(result["upstream_addresses"]) == 10
    assert result["addresses_dropped"] == 10


def test_signature_tables_are_consistent():
    assert ERROR_SIGNATURES <= set(SIGNATURES)
    assert {"reload", "reload_signal", "info", "client_closed"}.isdisjoint(ERROR_SIGNATURES)
    groups = [
        ERROR_SIGNATURES,
        SECONDARY_SIGNATURES,
        NOT_UPSTREAM_SIGNATURES,
        {"client_closed", "reload", "reload_signal"},
    ]
    assert sum(len(g) for g in groups) == len(SIGNATURES) == len(set().union(*groups))
    assert set().union(*groups) == set(SIGNATURES)


def test_log_reload_marker_wins_over_an_imprecise_worker_start_time():
    """Worker start times from /proc can be off by a second; the log's marker is exact.

    Shape of a real lab log (kubectl logs --timestamps): nginx starts, 20 ms later the first
    request fails; the /proc-derived start time handed in is a second late.
    """
    marker = real_line("start worker processes")
    refused = real_line("GET /refused")
    lines = [
        "2026-11-25T02:45:07.554279803Z " + marker,
        "2026-11-25T02:45:07.573579639Z " + refused,
        "2026-11-25T02:45:07.583854621Z " + refused,
    ]
    result = summarize(lines, reload_time="2026-11-25T02:45:08.5Z")
    assert result["reload_source"] == "log"
    assert result["reload_time"] == "2026-11-25T02:45:07.554279Z"
    assert result["argument_reload_time"] == "2026-11-25T02:45:08.500000Z"
    assert result["counts_after_reload"]["connect_refused"] == 2
    assert all(e["after_reload"] for e in result["errors"])
    # without the marker in the window, the argument is all there is
    result = summarize(lines[1:], reload_time="2026-11-25T02:45:07.58Z")
    assert result["reload_source"] == "argument"
    assert result["counts_after_reload"] == {"connect_refused": 1}
    assert [e["after_reload"] for e in result["errors"]] == [False, True]


def test_marker_order_decides_within_the_same_second():
    """Without timestamps nginx's times have 1 s resolution: line order decides (the second
    failure is a new worker's: the same worker after the marker would be the old one)."""
    refused = real_line("GET /refused")
    marker = real_line("start worker processes")
    pid = refused.split("] ", 1)[1].split("#", 1)[0]
    by_new_worker = refused.replace("%s#%s:" % (pid, pid), "%d#%d:" % (int(pid) + 1, int(pid) + 1))
    assert by_new_worker != refused
    result = summarize([refused, marker, by_new_worker])
    assert result["counts_after_reload"]["connect_refused"] == 1
    assert [e["after_reload"] for e in result["errors"]] == [False, True]


def test_summarize_bad_arguments_are_named():
    with pytest.raises(TypeError, match="iterable of log lines"):
        summarize(None)
    with pytest.raises(TypeError, match="got str"):
        summarize("one big string")
    with pytest.raises(ValueError, match="reload_time='last tuesday' is not a time"):
        summarize([], reload_time="last tuesday")


@pytest.mark.slow
def test_the_machines_nginx_still_writes_what_the_fixtures_hold(tmp_path):
    """Regenerate the logs with the real nginx (about 25 s) and parse them the same way."""
    generator = fixture_generator("make_fixtures")
    # Free ports: another test run on this machine may be regenerating them at the same time.
    statuses = generator.main(str(tmp_path), free_ports=True)
    assert statuses["/ok"] == 200 and statuses["/refused"] == 502
    assert statuses["/connect-timeout"] == 504
    with open(tmp_path / "nginx_error.log", "rb") as handle:
        live = summarize(handle)
    saved = summarize(fixture_lines("nginx_error.log"))
    compared = sorted(ERROR_SIGNATURES | {"reload", "reload_signal", "client_closed"})
    assert {s: live["counts"].get(s, 0) for s in compared} == {
        s: saved["counts"].get(s, 0) for s in compared
    }
    assert live["failed_reloads"] == saved["failed_reloads"] == 1


# ---------------------------------------------------------------- what is about an upstream


def phase_line(needle):
    """The first line of the real phases log (make_phase_fixtures.py) holding ``needle``."""
    hits = [line for line in fixture_lines("nginx_error_phases.log") if needle in line]
    assert hits, "fixture has no line with %r" % needle
    return hits[0]


# (needle in the real phases log, signature): nginx's own lines that are NOT upstream errors
NOT_UPSTREAM_CASES = [
    ('favicon.ico" failed (2: No such file or directory)', "not_upstream"),
    ("directory index of", "not_upstream"),
    ("access forbidden by rule", "not_upstream"),
    ("client intended to send too large body", "not_upstream"),
    ("limiting requests, excess", "not_upstream"),
    ('using uninitialized "req_id" variable while logging request', "not_upstream"),
    ("client timed out (110: Connection timed out) while reading client request headers", "info"),
    (
        'client prematurely closed connection, client: 127.0.0.1, server: lab.example, request: "POST',
        "info",
    ),
    ("(104: Connection reset by peer) while sending response to client", "info"),
    ("(104: Connection reset by peer) while sending to client", "info"),
    ("an upstream response is buffered to a temporary file", "buffered"),
    ("while resolving, resolver:", "resolver_error"),
]


@pytest.mark.parametrize("needle,signature", NOT_UPSTREAM_CASES)
def test_lines_about_no_upstream_are_never_upstream_errors(needle, signature):
    entry = parse_error_line(phase_line(needle))
    assert entry["signature"] == signature
    assert signature not in ERROR_SIGNATURES and signature not in SECONDARY_SIGNATURES
    assert signature in NOT_UPSTREAM_SIGNATURES


def test_error_level_is_not_what_makes_an_upstream_error():
    """A missing favicon is [error] too; nginx's phase and fields tell, not the level."""
    missing = parse_error_line(phase_line("favicon.ico"))
    refused = parse_error_line(real_line("GET /refused"))
    assert missing["level"] == refused["level"] == "error"
    assert not about_upstream(missing["message"], missing["phase"], missing["upstream"])
    assert about_upstream(refused["message"], refused["phase"], refused["upstream"])
    # the request's own resolution failure is about the upstream's name, with no phase
    dns = parse_error_line(phase_line("could not be resolved (110"))
    assert dns["signature"] == "dns_not_found" and dns["phase"] is None


def test_about_upstream_by_phase_message_and_field():
    assert about_upstream("recv() failed (104: x)", "reading response header from upstream")
    assert about_upstream("recv() failed (104: x)", "proxying upgraded connection")
    assert about_upstream("upstream timed out (110: x)", "sending to client")
    assert about_upstream("connect() to 10.0.0.1:80 failed (111: x)", None)
    assert about_upstream("something odd", None, "http://10.0.0.1:80/")
    # a phase about the client wins over the upstream field the request carries
    assert not about_upstream(
        "client prematurely closed connection (104: x)", "sending to client", "http://10.0.0.1/"
    )
    assert not about_upstream("SSL_do_handshake() failed (SSL: x)", "SSL handshaking")
    assert not about_upstream('open() "/x" failed (2: x)', None)


def test_client_side_tls_and_warn_lines_are_not_upstream_errors():
    """A scanner's TLS handshake to the proxy is not an ssl_handshake to the upstream."""
    line = (
        "2026/11/25 02:21:05 [crit] 7#7: *9 SSL_do_handshake() failed (SSL: error:0A00006C:SSL "
        "routines::bad key share) while SSL handshaking, client: 10.0.0.1, server: 0.0.0.0:443"
    )
    assert parse_error_line(line)["signature"] == "not_upstream"
    body = real_line("a client request body is buffered")
    assert parse_error_line(body)["signature"] == "buffered"


def test_secondary_lines_are_named_and_counted_apart():
    """proxy_next_upstream http_502 in front of apps that answer 502: only secondary lines."""
    lines = fixture_lines("nginx_error_phases.log")
    result = summarize(lines)
    assert result["counts"]["server_disabled"] == 2
    assert result["counts"]["no_live_upstreams"] == 2
    assert result["secondary_after_reload"] == 4
    assert SECONDARY_SIGNATURES.isdisjoint(ERROR_SIGNATURES)
    # the one upstream error of the log is the request whose name could not be resolved
    assert result["errors_after_reload"] == 1
    assert [e["signature"] for e in result["errors"]] == ["dns_not_found"]
    disabled = parse_error_line(phase_line("temporarily disabled"))
    assert disabled["level"] == "warn"
    assert disabled["phase"] == "reading response header from upstream"
    assert disabled["errno"] is None
    by_addr = {a["address"]: a for a in result["upstream_addresses"]}
    assert by_addr["127.77.1.2:8101"]["signatures"] == {"server_disabled": 1}
    assert by_addr["two_502"]["signatures"] == {"no_live_upstreams": 2}
    # a line about no upstream names no dialled address (the buffered response's server
    # answered; the resolver is not an upstream)
    assert "127.77.1.5:8104" not in by_addr and "127.77.1.6:8105" not in by_addr


def test_secondary_lines_never_push_the_primary_out_of_the_error_list():
    refused = real_line("GET /refused")
    flood = [real_line("no live upstreams")] * 200 + [real_line("temporarily disabled")] * 200
    result = summarize([refused] + flood, max_errors=5)
    assert [e["signature"] for e in result["errors"]] == ["connect_refused"]
    assert result["counts_after_reload"]["connect_refused"] == 1
    assert result["secondary_after_reload"] == 400


def test_upstream_status_of_no_live_upstreams_is_not_a_server_answer():
    """nginx logs 502 against the group's name when no server is left: no server answered."""
    result = summarize(fixture_lines("nginx_access_phases.log"))
    # next-two: B's 502 (request 1), B's 502 again (request 2, then `two_502`); request 3 is
    # only `two_502`; next-one: its server's 502 twice; /big: 200
    assert result["access"]["upstream_status_counts"] == {"200": 1, "502": 4}
    assert result["access"]["status_counts"]["502"] == 6


# ---------------------------------------------------------------- several logs of one nginx


def test_parse_utc_offset():
    assert parse_utc_offset("+0000") == 0
    assert parse_utc_offset("+0100\n") == 60
    assert parse_utc_offset("-05:30") == -330
    assert parse_utc_offset("CET") is None and parse_utc_offset(None) is None


def test_error_log_file_times_are_the_containers_local_time():
    line = real_line("GET /refused")  # 2026/11/25 02:39:35, no Kubernetes timestamp
    assert parse_line(line)["time"] == "2026-11-25T02:39:35Z"
    assert parse_line(line, local_offset=60)["time"] == "2026-11-25T01:39:35Z"
    assert line_time(line, 60) == "2026-11-25T01:39:35.000000"
    assert line_time("2026-11-25T02:39:35.5Z " + line, 60) == "2026-11-25T02:39:35.500000"
    assert line_time("not a log line") is None


def test_merge_logs_in_time_order_and_the_reload_marker_of_the_file():
    """The container log holds the access lines (Kubernetes timestamps), the file the error
    lines (nginx's own local time): one stream, and the file's reload marker places them."""
    container = [
        '2026-11-25T02:39:34.200000Z 127.0.0.1 - - [25/Nov/2026:03:39:34 +0100] "GET / '
        'HTTP/1.1" 200 3 "-" "curl"',
        '2026-11-25T02:39:36.100000Z 127.0.0.1 - - [25/Nov/2026:03:39:36 +0100] "GET / '
        'HTTP/1.1" 502 157 "-" "curl"',
        "2026-11-25T02:39:37.300000Z unrelated line",
    ]
    refused = real_line("GET /refused").replace("2026/11/25 02:39:35", "2026/11/25 03:39:36")
    marker = real_line("start worker processes").replace("02:39:34", "03:39:35")
    file_lines = [marker, refused]
    merged = list(merge_logs([container, file_lines], local_offset=60))
    assert merged == [container[0], marker, refused, container[1], container[2]]
    result = summarize(merged, local_offset=60)
    assert result["reload_source"] == "log"
    assert result["reload_time"] == "2026-11-25T02:39:35Z"
    assert result["counts_after_reload"]["connect_refused"] == 1
    assert result["access"]["status_counts_after_reload"] == {"502": 1}
    assert result["errors"][0]["time"] == "2026-11-25T02:39:36Z"


def test_lines_since_keeps_the_window_and_timeless_lines_follow_their_line():
    old = real_line("GET /refused")  # 02:39:35
    new = real_line("GET /refused").replace("02:39:35", "02:39:51")
    kept = lines_since([old, "  a continuation", new, "another"], "2026-11-25T02:39:40Z")
    assert kept == [new, "another"]
    assert lines_since([old], "2026-11-25T02:39:40Z", local_offset=-60) == [old]


@pytest.mark.slow
def test_the_machines_nginx_still_writes_the_phase_lines(tmp_path):
    """Regenerate the phases logs with the real nginx (about 10 s): the same signatures."""
    generator = fixture_generator("make_phase_fixtures")
    statuses = generator.main(str(tmp_path))
    assert statuses["/static/favicon.ico"] == 404 and statuses["/next-two#3"] == 502
    for name in ("nginx_error_phases.log", "nginx_access_phases.log"):
        with open(tmp_path / name, "rb") as handle:
            live = summarize(handle)
        saved = summarize(fixture_lines(name))
        assert live["counts"] == saved["counts"]
        assert live["access"]["upstream_status_counts"] == saved["access"]["upstream_status_counts"]


def test_worker_pids_place_lines_the_whole_second_time_cannot():
    """An error log file has nginx's own whole-second times: a line written in the same second
    as the reload (13.46) is placed by its PID (a current worker: after), and a line an old
    worker writes after the reload while it finishes a request is before it."""
    lines = [
        "2026/11/30 06:19:13 [error] 700#700: *1 connect() failed (111: Connection refused) "
        'while connecting to upstream, client: 10.0.0.1, server: _, request: "GET / HTTP/1.1", '
        'upstream: "http://10.1.1.10:5000/", host: "x"',
        "2026/11/30 06:19:14 [error] 512#512: *2 connect() failed (111: Connection refused) "
        'while connecting to upstream, client: 10.0.0.1, server: _, request: "GET / HTTP/1.1", '
        'upstream: "http://10.1.1.9:5000/", host: "x"',
    ]
    by_time = summarize(lines, reload_time="2026-11-30T06:19:13.46Z")
    assert by_time["counts_after_reload"] == {"connect_refused": 1}
    assert [e["upstream_address"] for e in by_time["errors"] if e["after_reload"]] == [
        "10.1.1.9:5000"
    ]
    by_pid = summarize(lines, reload_time="2026-11-30T06:19:13.46Z", worker_pids=[700, 701])
    assert by_pid["counts_after_reload"] == {"connect_refused": 1}
    assert [e["upstream_address"] for e in by_pid["errors"] if e["after_reload"]] == [
        "10.1.1.10:5000"
    ]
    # without a reload time there is nothing to place: the PIDs change nothing
    assert summarize(lines, worker_pids=[700])["counts_after_reload"] == {"connect_refused": 2}


def _reload_story(lines):
    """(failures old workers wrote after the last marker, 5xx access lines after it) of a log."""
    marker = max(i for i, line in enumerate(lines) if line.endswith("start worker processes"))
    started = {
        int(line.rsplit(" ", 1)[1])
        for line in lines[marker:]
        if " start worker process " in line and line.rsplit(" ", 1)[1].isdigit()
    }
    late = [
        line
        for line in lines[marker:]
        if "connect() failed" in line and int(line.split()[3].split("#")[0]) not in started
    ]
    answers = [line for line in lines[marker:] if '" 502 ' in line]
    return late, answers


def _check_reload_under_load(lines):
    late, answers = _reload_story(lines)
    # the story the log must tell for the check to mean anything
    assert late and answers, "no old worker failed a request after the new workers started"
    summary = summarize(lines)
    assert summary["reload_source"] == "log" and summary["reloads"] == 2
    assert summary["counts"]["connect_refused"] >= len(late)
    # the new workers dial the upstream that answers: nothing failed since the reload
    assert summary["errors_after_reload"] == 0
    assert summary["counts_after_reload"].get("connect_refused", 0) == 0
    assert summary["access"]["status_counts_after_reload"].keys() == {"200"}
    assert all(a["count_after_reload"] == 0 for a in summary["upstream_addresses"])
    assert not [e for e in summary["errors"] if e["after_reload"]]


def test_an_old_workers_lines_after_a_reload_are_not_after_it():
    """Real nginx, reloaded under load (make_reload_fixture.py): the master starts the new
    workers before it stops the old one, which still fails requests after the marker; those
    lines (by its PID) and their 502 access lines (paired with them, whichever stream came
    first) are the old generation's, not failures since the reload."""
    _check_reload_under_load(fixture_lines("nginx_reload_under_load.log"))


@pytest.mark.slow
def test_the_machines_nginx_still_fails_requests_in_old_workers_after_a_reload(tmp_path):
    """Regenerate the reload-under-load log with the real nginx (a few seconds)."""
    _check_reload_under_load(fixture_generator("make_reload_fixture").main(str(tmp_path)))


def _worker_line(time, pid, cid, client="10.0.0.1", upstream="10.1.1.9:5000"):
    return (
        "2026/11/30 %s [error] %d#%d: *%d connect() failed (111: Connection refused) while "
        'connecting to upstream, client: %s, server: _, request: "GET / HTTP/1.1", '
        'upstream: "http://%s/", host: "x"' % (time, pid, pid, cid, client, upstream)
    )


def _access_line(time, status, client="10.0.0.1"):
    return '%s - - [30/Nov/2026:%s +0000] "GET / HTTP/1.1" %d 157 "-" "curl/8" "-"' % (
        client,
        time,
        status,
    )


RELOAD_MARKER = [
    "2026/11/30 06:19:13 [notice] 1#1: signal 1 (SIGHUP) received from 90, reconfiguring",
    "2026/11/30 06:19:13 [notice] 1#1: reconfiguring",
    "2026/11/30 06:19:13 [notice] 1#1: start worker processes",
    "2026/11/30 06:19:13 [notice] 1#1: start worker process 700",
]


def test_a_new_workers_failure_after_a_reload_still_counts():
    """The placement only takes out what the old workers wrote: the new worker's failure and
    its 502, and a 502 no upstream line explains, are after the reload."""
    lines = (
        [_worker_line("06:19:12", 512, 1), _access_line("06:19:12", 502)]
        + RELOAD_MARKER
        + [_worker_line("06:19:13", 512, 2), _access_line("06:19:13", 502)]
        + [_worker_line("06:19:14", 700, 1, upstream="10.1.1.8:5000")]
        + [_access_line("06:19:14", 502), _access_line("06:19:14", 504, client="10.0.0.7")]
    )
    summary = summarize(lines)
    assert summary["counts_after_reload"]["connect_refused"] == 1
    assert summary["access"]["status_counts_after_reload"] == {"502": 1, "504": 1}
    assert [a["address"] for a in summary["upstream_addresses"] if a["after_reload"]] == [
        "10.1.1.8:5000"
    ]
    assert [e["pid"] for e in summary["errors"] if e["after_reload"]] == [700]


def test_an_access_line_written_before_its_error_line_is_placed_with_it():
    """Two pipes: the old worker's 502 may be read before its connect() line; it is taken back
    from after the reload when that line shows the request was the old worker's."""
    lines = RELOAD_MARKER + [
        _access_line("06:19:13", 502),
        _worker_line("06:19:13", 512, 9),
        _access_line("06:19:13", 200),
    ]
    summary = summarize(lines)
    assert summary["errors_after_reload"] == 0
    assert summary["access"]["status_counts_after_reload"] == {"200": 1}
    assert summary["access"]["requests_after_reload"] == 1
    assert summary["access"]["status_counts"] == {"200": 1, "502": 1}


def test_without_the_started_workers_an_upstream_line_after_the_marker_counts():
    """No ``start worker process PID`` line (cut by the window, or another format): nothing
    tells the generations apart, so every line after the marker is after the reload."""
    lines = RELOAD_MARKER[:3] + [_worker_line("06:19:13", 512, 9), _access_line("06:19:13", 502)]
    summary = summarize(lines)
    assert summary["counts_after_reload"]["connect_refused"] == 1
    assert summary["access"]["status_counts_after_reload"] == {"502": 1}


def test_a_respawned_worker_is_of_the_current_generation():
    """A worker the master starts again after one crashed (no new marker) is a current one."""
    lines = RELOAD_MARKER + [
        "2026/11/30 06:19:20 [alert] 1#1: worker process 700 exited on signal 11",
        "2026/11/30 06:19:20 [notice] 1#1: start worker process 731",
        _worker_line("06:19:21", 731, 1),
        _access_line("06:19:21", 502),
    ]
    summary = summarize(lines)
    assert summary["counts_after_reload"]["connect_refused"] == 1
    assert summary["access"]["status_counts_after_reload"] == {"502": 1}


def test_an_access_line_pairs_only_with_a_near_failure_of_its_own_request():
    """A 502 from another client, or seconds after the old worker's failure, is its own
    request: counted after the reload."""
    lines = RELOAD_MARKER + [
        _worker_line("06:19:13", 512, 9),
        _access_line("06:19:13", 502, client="10.0.0.2"),
        _access_line("06:19:19", 502),
    ]
    summary = summarize(lines)
    assert summary["errors_after_reload"] == 0
    assert summary["access"]["status_counts_after_reload"] == {"502": 2}


def test_the_given_reload_places_an_old_workers_access_line_with_its_failure():
    """Without the marker in the log (workers' PIDs and start time from /proc), the access line
    of a request an old worker failed after the start time is not after the reload."""
    lines = [
        _worker_line("06:19:14", 512, 2),
        _access_line("06:19:14", 502),
        _worker_line("06:19:14", 700, 1),
        _access_line("06:19:14", 502),
    ]
    summary = summarize(lines, reload_time="2026-11-30T06:19:13.46Z", worker_pids=[700])
    assert summary["reload_source"] == "argument"
    assert summary["counts_after_reload"]["connect_refused"] == 1
    assert summary["access"]["status_counts_after_reload"] == {"502": 1}


def test_an_old_worker_writing_before_the_new_workers_are_named_is_still_old():
    """The master logs ``start worker processes``, then forks and names each worker; the old
    worker (seen before the marker) may fail a request in between: still the old generation."""
    lines = (
        [_worker_line("06:19:12", 512, 1), _access_line("06:19:12", 502)]
        + RELOAD_MARKER[:3]
        + [_worker_line("06:19:13", 512, 2), _access_line("06:19:13", 502)]
        + RELOAD_MARKER[3:]
        + [_access_line("06:19:13", 200)]
    )
    summary = summarize(lines)
    assert summary["errors_after_reload"] == 0
    assert summary["access"]["status_counts_after_reload"] == {"200": 1}
