"""The small HTML pages of dashboard sign-in: confirm a magic link, then the result."""

from __future__ import annotations

from html import escape

from stackbe_common.pages import page


def confirm_page(token: str, action: str = "/v1/auth/confirm", product: str = "StackBE") -> str:
    """A GET shows this; only the form's POST spends the token."""
    return page(
        f"Sign in to {product}",
        f"<h1>Sign in to {escape(product)}</h1><p>Press the button to finish signing in.</p>"
        f'<form method=post action="{escape(action, quote=True)}">'
        f'<input type=hidden name=token value="{escape(token, quote=True)}">'
        "<button type=submit>Sign in</button></form>",
    )


def customer_signed_in_page(product: str, email: str) -> str:
    return page(
        "Signed in",
        f"<h1>Signed in</h1><p>You are signed in to {escape(product)} as {escape(email)}.</p>"
        "<p>You can close this page and return to the app.</p>",
    )


def signed_in_page(email: str, access_token: str, refresh_token: str, expires_in: int) -> str:
    return page(
        "Signed in",
        f"<h1>Signed in</h1><p>You are signed in as {escape(email)}.</p>"
        f"<p>Access token (valid {expires_in // 60} minutes):</p>"
        f"<code>{escape(access_token)}</code>"
        f"<p>Refresh token:</p><code>{escape(refresh_token)}</code>",
    )


def failed_page(message: str) -> str:
    return page(
        "Sign-in link not valid",
        f"<h1>This link cannot be used</h1><p>{escape(message)}</p>"
        "<p>Ask for a new sign-in link.</p>",
    )
