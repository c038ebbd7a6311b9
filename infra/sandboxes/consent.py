"""Walks a provider's consent pages the way a person does: fill the HTML forms and press a button.
Works on any form-based consent (both sandboxes), without knowing their field names in advance."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    choices: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # (type, name, value) of radios/checkboxes
    buttons: list[tuple[str, str]] = field(default_factory=list)
    text_inputs: list[tuple[str, str]] = field(default_factory=list)  # (type, name)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").upper()))
        elif self.forms and tag in ("input", "button"):
            form, kind, name = (
                self.forms[-1],
                a.get("type", "text" if tag == "input" else "submit"),
                a.get("name", ""),
            )
            if kind == "hidden" and name:
                form.fields.setdefault(name, []).append(a.get("value", ""))
            elif kind in ("radio", "checkbox"):
                form.choices.append((kind, name, a.get("value", "")))
            elif kind == "submit":
                form.buttons.append((name, a.get("value", "")))
            elif name:
                form.text_inputs.append((kind, name))


def forms_of(page: httpx.Response) -> list[Form]:
    parser = _FormParser()
    parser.feed(page.text)
    return parser.forms


def walk_consent(
    client: httpx.Client,
    authorize_url: str,
    *,
    username: str,
    password: str,
    choose: list[str] | None = None,
    allow: bool = True,
    max_steps: int = 6,
) -> dict[str, str]:
    """Signs in, chooses tenants (their ids, or the first offered), allows or denies; returns the query
    of the final redirect to the app."""
    response = client.get(authorize_url)
    for _ in range(max_steps):
        if response.status_code in (302, 303):
            location = response.headers["location"]
            if urlsplit(location).netloc != urlsplit(str(response.request.url)).netloc:
                return {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}
            response = client.get(urljoin(str(response.request.url), location))
            continue
        assert response.status_code == 200, (
            f"consent page answered {response.status_code}: {response.text[:300]}"
        )
        form = forms_of(response)[0]
        data = {k: v[-1] for k, v in form.fields.items()}
        for kind, name in form.text_inputs:
            data[name] = password if kind == "password" else username
        picked = [c for c in form.choices if choose is None or c[2] in choose] or form.choices[:1]
        if choose is None:
            picked = picked[:1]
        body: list[tuple[str, str]] = list(data.items()) + [(name, value) for _, name, value in picked]
        if form.buttons:
            wanted = "allow" if allow else "deny"
            button = next(
                (b for b in form.buttons if wanted in b[1].lower() or wanted in b[0].lower()), form.buttons[0]
            )
            if button[0]:
                body.append(button)
        response = client.request(
            form.method,
            urljoin(str(response.request.url), form.action or ""),
            content=urlencode(body).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    raise AssertionError("the consent did not redirect back to the app")
