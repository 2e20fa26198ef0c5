"""Prompt, history and completion sites from the text around the cursor."""

from __future__ import annotations

import pytest

from opensesame_predictor.surfaces.lsp.context import (
    Site,
    base_of_calls,
    completion_site,
    document_kind,
    enclosing_function,
    find_calls,
    history_before,
    http_base_variable,
    intent,
    prompt_at,
    url_path,
    uses_library,
)

HTTP = """\
@baseUrl = https://petstore.example.com/v1

### Log in
POST {{baseUrl}}/auth/login HTTP/1.1
Content-Type: application/json

{"username": "ann", "password": "secret"}

### Create a pet
# @name createPet
POST {{baseUrl}}/pets

### Upload a photo of the pet
# it must be a JPEG
POST \n"""

PYTHON = '''\
import httpx

BASE = "https://api.example.com"


def upload_pet_photo(client: httpx.Client) -> None:
    """Upload a photo for a new pet."""
    pet = client.post(f"{BASE}/pets", json={"name": "Rex"})
    requests.request("PUT", "https://api.example.com/pets/42")
    client.get(url="/users/me")
    open("/etc/hosts")  # a file path, not an API call
    r = httpx.get("/pets/")


def other() -> None:
    httpx.delete("/orders/1")
'''

TYPESCRIPT = """\
import axios from "axios";

// list the orders of the current user
export async function listOrders(api: Api): Promise<Order[]> {
  const me = await fetch(`${BASE}/users/me`);
  await fetch("/orders/42", {
    method: "DELETE",
  });
  const created = await axios.post<Order>('/orders', {});
  const response = await fetch("/
}
"""

SHELL = """\
#!/usr/bin/env bash
# create a pet, then read it back
curl -X POST "$API/pets" -d '{"name": "Rex"}'
curl https://api.example.com/pets/42
curl --data 'x=1' "$API/pets/42/photos"
curl -s "$API/"""


@pytest.mark.parametrize(
    ("language_id", "uri", "kind"),
    [
        ("http", "file:///a/x.txt", "http"),
        ("plaintext", "file:///a/requests.http", "http"),
        ("", "file:///a/requests.rest", "http"),
        ("python", "file:///a/x", "python"),
        ("typescriptreact", "file:///a/x", "js"),
        ("", "file:///a/app.mts", "js"),
        ("shellscript", "file:///a/x", "shell"),
        ("markdown", "file:///a/README.md", "other"),
    ],
)
def test_document_kind(language_id: str, uri: str, kind: str) -> None:
    assert document_kind(language_id, uri) == kind


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("{{baseUrl}}/users/{{id}}?x=1", ("/users/{{id}}", 11)),
        ("https://api.example.com/v1/pets#top", ("/v1/pets", 23)),
        ("${BASE}/orders", ("/orders", 7)),
        ("{BASE}/orders", ("/orders", 6)),
        ("$API/pets", ("/pets", 4)),
        ("/pets", ("/pets", 0)),
        ("https://api.example.com", None),
        ("hello world", None),
        ("//cdn.example.com/x", None),
    ],
)
def test_url_path(url: str, expected: tuple[str, int] | None) -> None:
    assert url_path(url) == expected


def test_http_calls_prompt_and_history() -> None:
    calls = find_calls(HTTP, "http")
    assert [(c.method, c.path, c.line) for c in calls] == [
        ("POST", "/auth/login", 3),
        ("POST", "/pets", 10),
    ]
    assert calls[0].start == 5 and calls[0].path_start == 16 and calls[0].method_start == 0
    assert calls[0].raw_path == "/auth/login"

    assert prompt_at(HTTP, 14, "http") == "Upload a photo of the pet it must be a JPEG"
    assert prompt_at(HTTP, 10, "http") == "Create a pet create pet"  # title + @name
    assert history_before(HTTP, 14, "http") == ["POST /auth/login", "POST /pets"]
    assert http_base_variable(HTTP) == "baseUrl"


def test_http_completion_sites() -> None:
    assert completion_site(HTTP, 14, 5, "http") == Site("path", 5, 5, "POST", "", "")
    typed = "GET {{baseUrl}}/pe\n"
    assert completion_site(typed, 0, 18, "http") == Site(
        "path", 15, 18, "GET", "{{baseUrl}}/pe", "{{baseUrl}}"
    )
    # a blank line between requests: a whole request; header and body lines: nothing
    assert completion_site(HTTP, 1, 0, "http") == Site("request", 0, 0, None, "", "")
    assert completion_site("### t\nGE\n", 1, 2, "http") == Site("request", 0, 2, None, "GE", "")
    assert completion_site(HTTP, 4, 3, "http") is None
    assert completion_site(HTTP, 2, 3, "http") is None  # the ### title line
    assert completion_site(HTTP, 13, 4, "http") is None  # a comment


def test_python_calls_prompt_and_history() -> None:
    calls = find_calls(PYTHON, "python")
    assert [(c.method, c.path, c.line) for c in calls] == [
        ("POST", "/pets", 7),
        ("PUT", "/pets/42", 8),
        (None, "/users/me", 9),
        ("GET", "/pets/", 11),
        ("DELETE", "/orders/1", 15),
    ]
    assert calls[0].url == "{BASE}/pets" and calls[0].raw_path == "/pets"

    prompt = prompt_at(PYTHON, 11, "python")
    assert prompt == "Upload a photo for a new pet. upload pet photo"
    # the history is the enclosing function's calls before the cursor
    assert history_before(PYTHON, 11, "python") == ["POST /pets", "PUT /pets/42", "/users/me"]
    assert history_before(PYTHON, 15, "python") == []

    site = completion_site(PYTHON, 11, 20, "python")  # after `/` in httpx.get("/pets/")
    assert site == Site("path", 19, 25, "GET", "/", "")
    fstring = completion_site(PYTHON, 7, 31, "python")  # f"{BASE}/|pets"
    assert fstring is not None and fstring.base == "{BASE}" and fstring.start == 30
    assert fstring.method == "POST"
    assert completion_site(PYTHON, 5, 10, "python") is None  # not in a string
    assert uses_library(PYTHON, ("requests", "httpx")) == "httpx"
    assert base_of_calls(calls, 11) == "https://api.example.com"


def test_python_comments_and_intents() -> None:
    code = "def sync():\n    # TODO: delete the user's last order\n    pass\n"
    assert intent(code.splitlines()[1], "python") == "delete the user's last order"
    assert prompt_at(code, 2, "python") == "delete the user's last order sync"
    assert intent("# noqa: E501", "python") is None
    assert intent("#!/usr/bin/env python", "python") is None
    assert intent("x = 1  # not a whole-line comment", "python") is None
    assert intent("# ok", "python") is None  # one word states no intent
    scope = enclosing_function(code.splitlines(), 2, "python")
    assert scope is not None and scope.name == "sync" and scope.start == 0


def test_typescript_calls_prompt_and_history() -> None:
    calls = find_calls(TYPESCRIPT, "js")
    assert [(c.method, c.path, c.line) for c in calls] == [
        ("GET", "/users/me", 4),
        ("DELETE", "/orders/42", 5),  # the method is in the options a line below
        ("POST", "/orders", 8),
    ]
    assert prompt_at(TYPESCRIPT, 9, "js") == "list the orders of the current user list orders"
    assert history_before(TYPESCRIPT, 9, "js") == [
        "GET /users/me",
        "DELETE /orders/42",
        "POST /orders",
    ]
    site = completion_site(TYPESCRIPT, 9, 33, "js")
    assert site == Site("path", 32, 33, None, "/", "")  # fetch without options: any method
    assert intent("// TODO(ann): cancel the order", "js") == "cancel the order"
    assert intent("// eslint-disable-next-line", "js") is None
    assert uses_library(TYPESCRIPT, ("axios",)) == "axios"


def test_shell_calls_prompt_and_history() -> None:
    calls = find_calls(SHELL, "shell")
    assert [(c.method, c.path) for c in calls] == [
        ("POST", "/pets"),
        ("GET", "/pets/42"),
        ("POST", "/pets/42/photos"),  # --data implies POST
        ("GET", "/"),
    ]
    assert prompt_at(SHELL, 5, "shell") == "create a pet, then read it back"
    assert history_before(SHELL, 5, "shell") == [
        "POST /pets",
        "GET /pets/42",
        "POST /pets/42/photos",
    ]
    site = completion_site(SHELL, 5, len(SHELL.splitlines()[5]), "shell")
    assert site is not None and site.base == "$API" and site.mode == "path"


def test_long_context_is_capped() -> None:
    text = "# " + "word " * 2000 + "\nGET \n"
    assert len(prompt_at(text, 1, "http")) <= 1000
