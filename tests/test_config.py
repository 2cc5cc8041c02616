"""Connection settings: where the key comes from, and URLs that could carry it refused without echoing them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.config import DEFAULT_REST_URL, Settings
from bridge.errors import InputError, MissingKeyError

KEY = "cfg-key-0123456789"


def test_defaults_and_trailing_slashes() -> None:
    """Without URLs the RunPod defaults apply; a trailing slash on a base URL is dropped."""
    s = Settings.resolve(environ={"RUNPOD_API_KEY": KEY, "RUNPOD_REST_V2_URL": "http://127.0.0.1:1/v2/"})
    assert s.rest_url == DEFAULT_REST_URL and s.rest_v2_url == "http://127.0.0.1:1/v2"
    assert KEY not in repr(s)


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("RUNPOD_GRAPHQL_URL", f"https://api.runpod.io/graphql?api_key={KEY}"),
        ("RUNPOD_REST_URL", f"https://user:{KEY}@rest.runpod.io/v1"),
        ("RUNPOD_REST_V2_URL", f"https://api.runpod.io/v2#{KEY}"),
    ],
)
def test_url_that_could_carry_the_key_is_refused_without_echoing_it(variable: str, url: str) -> None:
    """A URL with a query, fragment or credentials is an input error naming the variable, never the URL."""
    with pytest.raises(InputError) as info:
        Settings.resolve(environ={"RUNPOD_API_KEY": KEY, variable: url})
    assert variable in str(info.value) and KEY not in str(info.value)


@pytest.mark.parametrize("url", ["api.runpod.io/graphql", "ftp://api.runpod.io/graphql", "https://"])
def test_url_without_scheme_or_host_is_refused(url: str) -> None:
    """A URL bridge cannot send to is named by its variable, exit 2."""
    with pytest.raises(InputError, match=r"RUNPOD_GRAPHQL_URL.*not an http"):
        Settings.resolve(environ={"RUNPOD_API_KEY": KEY, "RUNPOD_GRAPHQL_URL": url})


def test_missing_key_names_the_variable() -> None:
    """No key at all says which variable or option to set."""
    with pytest.raises(MissingKeyError, match="RUNPOD_API_KEY"):
        Settings.resolve(environ={})


@pytest.mark.parametrize(
    "url",
    [
        "http://api.runpod.io/graphql",
        "http://10.0.0.1:8080/v1",
        "http://192.168.1.5/v2",
        "http://[2001:db8::1]/v1",
        "http://localhost.evil.example/v1",
        "http://127.0.0.1.nip.io/v1",
        "http://0.0.0.0:8000/v1",
        "HTTP://rest.runpod.io/v1",
    ],
)
def test_plain_http_to_another_host_is_refused(url: str) -> None:
    """The key would travel in cleartext: one line naming the variable and the host, exit 2."""
    for variable in ("RUNPOD_GRAPHQL_URL", "RUNPOD_REST_URL", "RUNPOD_REST_V2_URL"):
        with pytest.raises(InputError, match=rf"{variable}.*cleartext.*https://") as info:
            Settings.resolve(environ={"RUNPOD_API_KEY": KEY, variable: url})
        assert info.value.exit_code == 2 and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://127.9.8.7/v1",
        "http://localhost:1/v1",
        "http://[::1]:9/v1",
        "http://LOCALHOST/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "https://rest.example.com/v1",
    ],
)
def test_plain_http_to_loopback_and_https_anywhere_are_allowed(url: str) -> None:
    """The emulator on this machine, and TLS to any host, are fine."""
    assert Settings.resolve(environ={"RUNPOD_API_KEY": KEY, "RUNPOD_REST_URL": url}).rest_url == url.rstrip("/")


@pytest.mark.parametrize("key", ["clé-0123456789", "key-ü", "日本語のキー", "key\u200b0123", "emoji-🔑-key"])
def test_non_ascii_key_is_refused(key: str, tmp_path: Path) -> None:
    """A key outside ASCII cannot go in a header: exit 2, "the key must be ASCII", from the variable or a file."""
    with pytest.raises(InputError, match="RUNPOD_API_KEY: the key must be ASCII") as info:
        Settings.resolve(environ={"RUNPOD_API_KEY": key})
    assert info.value.exit_code == 2
    assert key not in str(info.value)
    path = tmp_path / "key"
    path.write_text(key + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="the key must be ASCII"):
        Settings.resolve(api_key_file=path, environ={})
    path.write_bytes(b"\xff\xfekey")
    with pytest.raises(InputError, match="the key must be ASCII"):
        Settings.resolve(api_key_file=path, environ={})


@pytest.mark.parametrize("key", ["key\x1b[31m0123", "key\x07bell", "key\x7fdel"])
def test_key_with_control_characters_is_refused(key: str) -> None:
    """An escape sequence in a key is refused, not sent."""
    with pytest.raises(InputError, match="control character"):
        Settings.resolve(environ={"RUNPOD_API_KEY": key})


def test_fifo_device_or_directory_as_key_file_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO with no writer does not hang; a device, a directory or a huge file is one line, exit 2."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link-to-fifo"
    link.symlink_to(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"k" * 100_000)
    for path, message in [
        (fifo, "must be a regular file"),
        (link, "must be a regular file"),
        (Path("/dev/null"), "must be a regular file"),
        (tmp_path, "must be a regular file"),
        (big, "not an API key"),
        (tmp_path / "missing", "cannot read the API key file"),
    ]:
        with pytest.raises(InputError, match=message) as info:
            Settings.resolve(api_key_file=path, environ={})
        assert str(path) in str(info.value) and info.value.exit_code == 2


def test_key_file_through_a_symlink_is_read(tmp_path: Path) -> None:
    """A symlink to a regular key file is fine."""
    real = tmp_path / "real"
    real.write_text(f"  {KEY}\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    assert Settings.resolve(api_key_file=link, environ={}).api_key == KEY


@pytest.mark.parametrize(
    "url", ["http://a\x1b[31mb/v1", "https://host:99999/v1", "https://host:port/v1", "http://[::1/v1", "https://h]/v1"]
)
def test_malformed_url_is_one_line(url: str) -> None:
    """A URL whose host or port cannot be read is an input error naming the variable, not a ValueError."""
    with pytest.raises(InputError, match="RUNPOD_REST_URL") as info:
        Settings.resolve(environ={"RUNPOD_API_KEY": KEY, "RUNPOD_REST_URL": url})
    assert "\x1b" not in str(info.value)


@pytest.mark.parametrize("variable", ["RUNPOD_GRAPHQL_URL", "RUNPOD_REST_URL", "RUNPOD_REST_V2_URL"])
@pytest.mark.parametrize(
    "url",
    [
        "http://[::1].evil.com/x",  # urlsplit reads the host as ::1 (loopback); the HTTP libraries refuse it
        "http://[::1]evil.com:80/x",
        "https://[::1]x/v2",
        "https://a..b/v2",  # an empty label: IDNA fails at the first request
        "https://.runpod.io/v2",
        "https://xn--/v2",  # an A-label with no Punycode
        "https://\u24b6pi.runpod.io/v2",  # circled A: IDNA refuses it (httpx too)
    ],
)
def test_a_host_the_http_layer_cannot_use_is_one_line_up_front(variable: str, url: str) -> None:
    """Bad input is exit 2 naming the variable at once, never an unexpected InvalidURL or IDNAError at the first
    request; and text after a bracketed address never makes a URL pass as loopback."""
    with pytest.raises(InputError, match=rf"^{variable} \(or its option\): not a valid URL") as info:
        Settings.resolve(environ={"RUNPOD_API_KEY": "k" * 20, variable: url})
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "url",
    ["http://[::1]:8765/graphql", "http://[::ffff:127.0.0.1]:1/g", "https://[2001:db8::1]/v2", "https://bücher.de/v2"],
)
def test_bracketed_addresses_and_idna_names_still_pass(url: str) -> None:
    assert Settings.resolve(environ={"RUNPOD_API_KEY": "k" * 20, "RUNPOD_GRAPHQL_URL": url}).graphql_url == url
