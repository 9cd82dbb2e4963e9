"""Which values are `sensitive`, and values with those parts masked: one rule for the
decision log and for explanations, applied at the value level, down through records,
records inside records, and maps of records (a whole record or map printed as one
value must not carry a sensitive field inside it)."""

from __future__ import annotations

from ..language.schema import is_map, map_value

MASK = "***"


def mask_plan(schema, records: dict) -> dict:
    """attribute -> MASK (sensitive), a record's plan, or ("map", plan): what to mask."""
    plan: dict = {}
    for a in schema.attrs if schema is not None else ():
        t = a.type
        if a.sensitive:
            plan[a.name] = MASK
        elif t in records:
            plan[a.name] = mask_plan(records[t], records)
        elif is_map(t) and map_value(t) in records:
            plan[a.name] = ("map", mask_plan(records[map_value(t)], records))
    return plan


def masked_attrs(attrs, plan: dict) -> dict:
    """Attributes (an entity's, a record's) with what `plan` names masked."""
    if not isinstance(attrs, dict):
        return {}
    out = {}
    for k, v in attrs.items():
        how = plan.get(k)
        if how is None:
            out[k] = v
        elif how is MASK:
            out[k] = MASK
        elif isinstance(how, tuple):
            out[k] = {key: masked_attrs(item, how[1]) for key, item in v.items()} \
                if isinstance(v, dict) else v
        else:
            out[k] = masked_attrs(v, how)
    return out


def masked_value(value, t: str, records: dict):
    """One value of declared type `t` with its sensitive parts masked: a record's
    sensitive fields, each record of a map of records; any other value as it is."""
    if t in records:
        return masked_attrs(value, mask_plan(records[t], records))
    if is_map(t) and map_value(t) in records and isinstance(value, dict):
        inner = mask_plan(records[map_value(t)], records)
        return {k: masked_attrs(v, inner) for k, v in value.items()}
    return value
