"""The services file: one entry per tenant with its time zone, keys and limits."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.settings import MIN_KEY_CHARS, SettingsError

DEFAULT_MAX_MODULES = 100
DEFAULT_MAX_ACTIVITIES = 500
# Requests per second to the keyless endpoints (pixel, /v1/collect); 0 turns a limit off.
DEFAULT_PUBLIC_RATE_PER_S = 1000
DEFAULT_SERVER_RATE_PER_S = 0


@dataclass(frozen=True)
class Service:
    id: str
    timezone: ZoneInfo
    server_keys: tuple[str, ...]
    read_keys: tuple[str, ...]
    allowed_origins: tuple[str, ...] = ()
    max_modules: int = DEFAULT_MAX_MODULES
    max_activities: int = DEFAULT_MAX_ACTIVITIES
    public_rate_per_s: int = DEFAULT_PUBLIC_RATE_PER_S
    server_rate_per_s: int = DEFAULT_SERVER_RATE_PER_S
    name: str = field(default="")


def load_services(path: Path) -> dict[str, Service]:
    """Read and check the services file; a bad entry raises SettingsError naming it."""
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError(f"SERVICES_FILE {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"SERVICES_FILE {path} is not valid TOML: {error}") from None
    entries = document.get("service")
    if not isinstance(entries, list) or not entries:
        raise SettingsError(f"SERVICES_FILE {path} must list at least one [[service]]")
    services: dict[str, Service] = {}
    for position, entry in enumerate(entries):
        service = _parse_service(entry, f"SERVICES_FILE {path}: service #{position + 1}")
        if service.id in services:
            raise SettingsError(f"SERVICES_FILE {path}: service {service.id} is listed twice")
        services[service.id] = service
    return services


def _parse_service(entry: dict[str, Any], where: str) -> Service:
    service_id = entry.get("id")
    if not isinstance(service_id, str) or not service_id or len(service_id) > 256:
        raise SettingsError(f"{where}: id must be a string of 1 to 256 characters")
    where = f"{where} ({service_id})"
    try:
        timezone = ZoneInfo(str(entry.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{where}: unknown timezone {entry.get('timezone')!r}") from None
    return Service(
        id=service_id,
        timezone=timezone,
        server_keys=_keys(entry, "server_key", where),
        read_keys=_keys(entry, "read_key", where),
        allowed_origins=tuple(_strings(entry, "allowed_origins", where)),
        max_modules=_limit(entry, "max_modules", DEFAULT_MAX_MODULES, where),
        max_activities=_limit(entry, "max_activities", DEFAULT_MAX_ACTIVITIES, where),
        public_rate_per_s=_limit(
            entry, "public_rate_limit_per_s", DEFAULT_PUBLIC_RATE_PER_S, where, zero_is_off=True
        ),
        server_rate_per_s=_limit(
            entry, "server_rate_limit_per_s", DEFAULT_SERVER_RATE_PER_S, where, zero_is_off=True
        ),
        name=str(entry.get("name", "")),
    )


def _keys(entry: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    """Accept one key or a list of two during a rotation."""
    raw = entry.get(name)
    keys = [raw] if isinstance(raw, str) else raw
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise SettingsError(f"{where}: {name} must be a string or a list of strings")
    if any(len(key) < MIN_KEY_CHARS for key in keys):
        raise SettingsError(f"{where}: every {name} must have at least {MIN_KEY_CHARS} characters")
    return tuple(keys)


def _strings(entry: dict[str, Any], name: str, where: str) -> list[str]:
    raw = entry.get(name, [])
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise SettingsError(f"{where}: {name} must be a list of strings")
    return raw


def _limit(
    entry: dict[str, Any], name: str, default: int, where: str, zero_is_off: bool = False
) -> int:
    raw = entry.get(name, default)
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < (0 if zero_is_off else 1):
        rule = "a whole number, 0 for no limit" if zero_is_off else "a positive whole number"
        raise SettingsError(f"{where}: {name} must be {rule}")
    return raw
