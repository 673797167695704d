"""Which Bubble key a field means, when an app names it differently: `First Name`, `first name`, `first_name_text`.

Bubble apps key records by display names ("Use field display instead of ID for key names") or by
field ids that carry the field's type (`first_name_text`, `role_option_os_role`, `client_user`,
`expertise_list_text`, `booking_custom_booking`). Both reduce to the same normal form here, so a
check can say which key a misspelled field map probably meant, and `culturebridge discover` can
write a field map for an app it has never seen.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

# A field id ends with its type: _text, _number, _date, _boolean, _user, _image, _file,
# _geographic_address, _option_<set>, _custom_<type>, _list_<type>.
_TYPE_SUFFIX = re.compile(
    r"_(?:list_)?(?:text|number|date|boolean|yes_no|user|image|file|geographic_address|option_\w+|custom_\w+)$"
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def normal_form(key: str) -> str:
    """`First Name`, `first_name_text` and `FirstName` all become `firstname`."""
    key = key.strip()
    base = _TYPE_SUFFIX.sub("", key.lower()) if "_" in key and " " not in key else key.lower()
    return _NOT_ALNUM.sub("", base)


def lookalikes(wanted: str, keys: Iterable[str], limit: int = 3) -> list[str]:
    """The keys that look like `wanted`: the same normal form first, then the closest spellings."""
    keys = [k for k in dict.fromkeys(keys) if k != wanted]
    target = normal_form(wanted)
    same = [k for k in keys if normal_form(k) == target]
    by_form = {normal_form(k): k for k in keys if k not in same}
    close = difflib.get_close_matches(target, list(by_form), n=limit, cutoff=0.75)
    return (same + [by_form[form] for form in close])[:limit]
