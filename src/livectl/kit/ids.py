"""Identifiers shared by every domain (API.md: 1..64 of ``[A-Za-z0-9_.:-]``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import StringConstraints

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
RoomIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="room id")]
ProductIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="product id")]
