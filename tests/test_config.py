"""Connection settings: where the key comes from, and URLs that could carry it refused without echoing them."""

from __future__ import annotations

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
