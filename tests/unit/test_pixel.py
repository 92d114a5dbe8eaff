"""Totango pixel parameters to event objects."""

from __future__ import annotations

from multidict import MultiDict
from yarl import URL

from collector.pixel import pixel_error, pixel_event
from common.events import FieldError


def test_every_documented_parameter_is_mapped() -> None:
    query = URL(
        "/pixel.gif?sdr_s=SP-1&sdr_o=ABC&sdr_u=joe%40acme.com&sdr_a=Create&sdr_m=Invoices"
        "&sdr_odn=Acme%20Boston&sdr_o.parent_id=XYZ&sdr_o.Contract%20Value=5000"
        "&sdr_u.Role=admin&r=https%3A%2F%2Fref&sdrurl=x&sdr_heartbeat=1&other=2"
    ).query
    assert pixel_event(query) == {
        "service_id": "SP-1",
        "account_id": "ABC",
        "user_id": "joe@acme.com",
        "activity": "Create",
        "module": "Invoices",
        "account_name": "Acme Boston",
        "parent_id": "XYZ",
        "account_attributes": {"Contract Value": "5000"},
        "user_attributes": {"Role": "admin"},
    }


def test_account_name_parameter_alias_and_first_value_wins() -> None:
    params = MultiDict(
        [("sdr_s", "SP-1"), ("sdr_o", "A"), ("sdr_o", "B"), ("sdr_o.account_name", "Acme")]
    )
    assert pixel_event(params) == {"service_id": "SP-1", "account_id": "A", "account_name": "Acme"}


def test_empty_values_count_as_missing() -> None:
    assert pixel_event({"sdr_s": "SP-1", "sdr_o": "", "sdr_u": ""}) == {"service_id": "SP-1"}


def test_errors_name_the_parameter_not_the_field() -> None:
    assert pixel_error(FieldError("account_id", "is required")) == "sdr_o is required"
    assert pixel_error(FieldError("user_attributes", "must be an object")) == (
        "sdr_u.<name> must be an object"
    )
