"""The base of every payload model: wire (camelCase) names in and out, Python names too."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)


class WireModel(BaseModel):
    # A payload field named `model_dump` is `model_dump_` in Python (the spec name is its alias):
    # nothing is shadowed, so pydantic's warning about the `model_dump` prefix would only be noise.
    model_config = ConfigDict(
        populate_by_name=True, serialize_by_alias=True, protected_namespaces=()
    )

    @model_serializer(mode="wrap")
    def _leave_out_unset_nulls(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        """An optional field nobody set is left out; a null that was set (a required nullable
        field, or one received as null) is sent as null, so the model reads its own output."""
        data = handler(self)
        if not isinstance(data, dict):
            return data
        by_alias = info.by_alias  # None: as the config says, which is by alias
        by_alias = self.model_config.get("serialize_by_alias") if by_alias is None else by_alias
        for name, field in type(self).model_fields.items():
            if name not in self.model_fields_set and getattr(self, name, None) is None:
                key = field.alias if by_alias and field.alias is not None else name
                data.pop(key, None)
        return data
