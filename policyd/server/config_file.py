"""`--config FILE`: every serve setting in TOML, flags overriding the file.

`[server]` holds the serve flags (`-` written `_`), `[authn.jwt]`, `[authn.jwt.claims]`,
`[authn.mtls]` and `[envoy]` the gateway's settings (docs/server.md lists every key).
Relative paths are relative to the file's own directory; unknown keys and wrong types
are errors naming the key, at start.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from .config import ServeConfig

SECTIONS = ("server", "authn", "envoy", "authzen")
_PATHS = ("path", "shadow", "tls_cert", "tls_key", "tls_client_ca", "decision_log")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and key."""


def read_config(file: Path) -> dict:
    """The settings of a file, paths resolved against its directory (not yet validated)."""
    try:
        raw = tomllib.loads(Path(file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    for key in raw:
        if key not in SECTIONS:
            raise ConfigError(f"{file}: unknown section or key `{key}` (sections: "
                              f"{', '.join(SECTIONS)})")
    base = Path(file).resolve().parent
    server = dict(raw.get("server", {}))
    for key in _PATHS:
        if isinstance(server.get(key), str) and server[key] != "-":
            server[key] = str(base / server[key])
    if isinstance(server.get("data"), list):
        server["data"] = [str(base / d) if isinstance(d, str) else d for d in server["data"]]
    authn = raw.get("authn", {})
    jwt = authn.get("jwt") if isinstance(authn, dict) else None
    if isinstance(jwt, dict) and isinstance(jwt.get("jwks"), str) and "://" not in jwt["jwks"]:
        authn = {**authn, "jwt": {**jwt, "jwks": str(base / jwt["jwks"])}}
    out = {**server}
    if "authn" in raw:
        out["authn"] = authn
    if "envoy" in raw:
        out["envoy"] = raw["envoy"]
    if "authzen" in raw:
        authzen = dict(raw["authzen"]) if isinstance(raw["authzen"], dict) else raw["authzen"]
        if isinstance(authzen, dict) and isinstance(authzen.get("pep_tokens"), str):
            authzen["pep_tokens"] = str(base / authzen["pep_tokens"])
        out["authzen"] = authzen
    return out


def build_config(file: Path | None, flags: dict) -> ServeConfig:
    """The file's settings with the given flags over them; raises ConfigError."""
    settings = read_config(file) if file is not None else {}
    envoy_flag = flags.pop("envoy", None)
    settings.update(flags)
    if envoy_flag:
        settings["envoy"] = {**settings.get("envoy", {}), "enabled": True}
    try:
        return ServeConfig(**settings)
    except ValidationError as exc:
        where = f"{file}: " if file is not None else ""
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{where}{key + ': ' if key else ''}{msg}")
        raise ConfigError("\n".join(problems)) from None
