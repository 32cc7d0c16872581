"""NIfTI volumes: reading (SimpleITK) and writing (this package's own streaming NIfTI-1 writer) with their
geometry, and a raw header reader.

Array convention of the whole package: numpy arrays of voxels are indexed
``[k, j, i]`` (slowest axis first), as ``SimpleITK.GetArrayFromImage`` and
Slicer's ``arrayFromVolume`` return them; :class:`~visceral.conventions.frames.ImageGeometry`
gives shape and spacing in ``(i, j, k)`` order.

:func:`read_nifti_header` parses the 348-byte NIfTI-1 header itself, so the
validator can check qform/sform, units and the identifying text fields of
thousands of files without decompressing any voxel data.
"""

from __future__ import annotations

import gzip
import itertools
import os
import struct
import threading
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO, Callable, Deque, Dict, Iterator, List, Optional, Tuple

import numpy as np

from visceral.conventions.frames import ImageGeometry, corner_indices
from visceral.errors import FileFormatError, GeometryError
from visceral.fileio import atomic_output_path
from visceral.types import PathLike

__all__ = ["read_geometry", "read_volume", "write_volume", "write_volume_slabs", "NiftiHeader", "read_nifti_header", "read_nifti_voxels", "smallest_label_dtype"]


def _reader(path: PathLike) -> "sitk.ImageFileReader":  # noqa: F821
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO("NiftiImageIO")
    return reader


def read_geometry(path: PathLike) -> ImageGeometry:
    """The voxel grid of a NIfTI file, from its header only.

    Raises:
        FileFormatError: the file is missing or not a readable NIfTI.
    """
    reader = _reader(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise FileFormatError(path, f"not a readable NIfTI file ({_itk_reason(exc)})") from None
    if reader.GetDimension() != 3:
        raise FileFormatError(path, f"expected a 3D volume, found {reader.GetDimension()} dimensions")
    direction = np.asarray(reader.GetDirection(), dtype=float).reshape(3, 3)
    try:
        return ImageGeometry(tuple(reader.GetSize()), tuple(reader.GetSpacing()), tuple(reader.GetOrigin()), tuple(map(tuple, direction)))
    except GeometryError as exc:
        raise FileFormatError(path, str(exc)) from None


class NotNifti1(FileFormatError):
    """A file that is not NIfTI-1 (or holds a type it does not define): another reader may read it."""


def read_volume(path: PathLike) -> Tuple[np.ndarray, ImageGeometry]:
    """Voxels (``[k, j, i]``, native byte order) and grid of a NIfTI file.

    Voxels come from :func:`read_nifti_voxels` (NaN preserved); files that are not
    NIfTI-1 (e.g. NIfTI-2) fall back to SimpleITK.  A NIfTI-1 file whose voxel data is
    truncated or unreadable is refused (SimpleITK would fill the missing voxels with 0).
    """
    geometry = read_geometry(path)
    try:
        values = read_nifti_voxels(path)
        values = np.array(values, dtype=values.dtype.newbyteorder("="))
    except NotNifti1:
        try:
            image = _reader(path).Execute()
        except RuntimeError as exc:
            raise FileFormatError(path, f"not a readable NIfTI file ({_itk_reason(exc)})") from None
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise FileFormatError(path, "expected a single-component volume") from None
        import SimpleITK as sitk

        values = sitk.GetArrayFromImage(image)
    return values, geometry


#: The longest axis a NIfTI-1 header can hold (``dim`` is a signed 16-bit number).
NIFTI1_MAX_AXIS = 32767

#: gzip level of written volumes: 1 compresses a CT about 4x faster than zlib's default 6 for files
#: about 10 % larger (measured in bench/convert.py); decompression speed is the same.
GZIP_LEVEL = 1


def _checked_dtype(geometry: ImageGeometry, dtype: np.dtype) -> np.dtype:
    """The little-endian voxel type of a volume of ``dtype`` on ``geometry``, after checking NIfTI-1 holds both."""
    if max(geometry.shape) > NIFTI1_MAX_AXIS:
        raise GeometryError(f"grid {geometry.shape}: NIfTI-1 holds at most {NIFTI1_MAX_AXIS} voxels along an axis")
    little = np.dtype(dtype).newbyteorder("<")
    if little.str[1:] not in _DTYPE_CODES:
        raise ValueError(f"voxel type {dtype} cannot be written to NIfTI-1")
    return little


def write_volume(path: PathLike, array: np.ndarray, geometry: ImageGeometry, compress: Optional[bool] = None, level: int = GZIP_LEVEL) -> Path:
    """Write ``array`` (``[k, j, i]``) on ``geometry`` as NIfTI-1 to ``path``, atomically.

    Our own writer (:func:`nifti_header_bytes`), streaming the voxels in blocks of slices into the
    file; for ``.nii.gz`` the blocks are compressed on every core at once, one gzip member each
    (:func:`_write_gzip_members`), a few blocks ahead of the write.  qform and sform both hold the grid (codes 1, "scanner"),
    units are mm, the text fields (descrip, aux_file, intent_name) stay empty.
    """
    path = Path(path)
    expected = tuple(reversed(geometry.shape))
    if array.shape != expected:
        raise GeometryError(f"array shape {array.shape} (k, j, i) does not match the grid {geometry.shape} (i, j, k)")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    dtype = _checked_dtype(geometry, array.dtype)
    compress = path.name.endswith(".gz") if compress is None else compress
    with atomic_output_path(path) as tmp:
        with open(tmp, "wb") as handle:
            chunks = _chunks(nifti_header_bytes(geometry, dtype) + b"\0\0\0\0", array, dtype)  # no extensions
            if not compress:
                for chunk in chunks:
                    handle.write(chunk)
            else:
                _write_gzip_members(handle, (partial(_gzip_block, chunk, level) for chunk in chunks))
    return path


#: What a slab painter returns: the places of its slab buffer it wrote (index tuples), so that the
#: writer can set them back to zero for the next slab.
Painted = List[Tuple[slice, ...]]


def write_volume_slabs(path: PathLike, geometry: ImageGeometry, dtype: np.dtype, paint: Callable[[int, np.ndarray, np.ndarray], Painted],
                       compress: Optional[bool] = None, level: int = GZIP_LEVEL) -> Path:
    """Write a volume on ``geometry`` made slab by slab, without the whole array: ``paint(k, out, rows)``
    writes the voxels of slices ``k .. k + len(out) - 1`` into ``out`` (``[k, j, i]``, all zero when
    given), marks in ``rows`` (``[k, j]``, all ``False`` when given) every row where it wrote a voxel other
    than 0, and returns the places it wrote.  Each slab (about :data:`GZIP_BLOCK_BYTES`) is painted
    and compressed by one worker thread in a buffer of its own, reused for its next slab; the rows not
    marked go out as cached members of zeros, the others through zlib.  Otherwise as
    :func:`write_volume` (the same header).  Memory: one slab buffer per worker."""
    path = Path(path)
    dtype = _checked_dtype(geometry, dtype)
    ni, nj, nk = geometry.shape
    step = max(1, GZIP_BLOCK_BYTES // (ni * nj * dtype.itemsize))
    head = nifti_header_bytes(geometry, dtype) + b"\0\0\0\0"  # no extensions
    buffers = threading.local()

    def slab(k: int, compressed: bool) -> bytes:
        out = getattr(buffers, "out", None)
        if out is None:
            out = buffers.out = np.zeros((step, nj, ni), dtype)
        out = out[:min(step, nk - k)]
        rows = np.zeros(out.shape[:2], dtype=bool)
        painted = paint(k, out, rows)
        data = _gzip_block(out, level, LABEL_MEM_LEVEL, rows.ravel(), ni * dtype.itemsize) if compressed else out.tobytes()
        for place in painted:
            out[place] = 0
        return data

    compress = path.name.endswith(".gz") if compress is None else compress
    with atomic_output_path(path) as tmp:
        with open(tmp, "wb") as handle:
            if not compress:
                handle.write(head)
                for k in range(0, nk, step):
                    handle.write(slab(k, False))
            else:
                tasks = (partial(slab, k, True) for k in range(0, nk, step))
                _write_gzip_members(handle, itertools.chain([partial(_gzip_block, head, level)], tasks))
    return path


#: Bytes of voxels compressed as one gzip member (by one thread).
GZIP_BLOCK_BYTES = 2 << 20


def _chunks(head: bytes, array: np.ndarray, dtype: np.dtype) -> Iterator[bytes]:
    """The file's bytes in blocks of about :data:`GZIP_BLOCK_BYTES` (whole slices; the header first).
    An array already contiguous in the file's byte order is handed out as views, not copied."""
    if array.flags.c_contiguous and array.dtype == dtype:
        yield head
        flat = memoryview(array.reshape(-1).view(np.uint8))
        for start in range(0, len(flat), GZIP_BLOCK_BYTES):
            yield flat[start:start + GZIP_BLOCK_BYTES]  # type: ignore[misc]
        return
    block: List[bytes] = [head]
    size = len(head)
    for k in range(array.shape[0]):
        data = np.ascontiguousarray(array[k], dtype=dtype).tobytes()
        block.append(data)
        size += len(data)
        if size >= GZIP_BLOCK_BYTES:
            yield b"".join(block)
            block, size = [], 0
    if block:
        yield b"".join(block)


def _write_gzip_members(handle: BinaryIO, blocks: Iterator[Callable[[], bytes]]) -> None:
    """Make the gzip members of the blocks (``blocks`` give them as calls) on every core (zlib and
    numpy release the GIL), written in order while the next ones are made: a multi-member gzip file,
    which gzip readers (zlib's gzread in ITK and 3D Slicer, Python's gzip, nibabel) read as one stream."""
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: Deque = deque()
        for block in blocks:
            pending.append(pool.submit(block))
            if len(pending) > workers:
                handle.write(pending.popleft().result())
        while pending:
            handle.write(pending.popleft().result())


def _gzip_block(chunk, level: int, mem_level: int = zlib.DEF_MEM_LEVEL, data_units: Optional[np.ndarray] = None,
                unit_bytes: Optional[int] = None) -> bytes:
    """A block as gzip members: one per run of data (compressed at ``level`` with zlib's ``mem_level``),
    and for each run of zero bytes (the background of a label volume) members compressed once per
    process (:func:`_zero_member`).  ``data_units``, ``unit_bytes``: see :func:`_zero_runs`."""
    unit_bytes = unit_bytes or ZERO_UNIT_BYTES
    runs = _zero_runs(chunk, data_units, unit_bytes)
    return b"".join(_zero_member(units, level, unit_bytes) if units else _gzip_member(piece, level, mem_level) for units, piece in runs)


def _gzip_member(data, level: int, mem_level: int) -> bytes:
    """``data`` as one gzip member (zlib's own gzip header: no name, time 0)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31, mem_level)
    return compressor.compress(data) + compressor.flush()


#: zlib's memory level for the runs of data of a label volume (:func:`write_volume_slabs`): a hash
#: table of 2^11 entries instead of 2^15 makes zlib level 1 about 25 % faster on the runs of label
#: values and zeros between the background runs, for files of the same size; a CT compresses faster
#: with the default (8) (measured on the label volume of bench/slicer_export.py and on a synthetic CT).
LABEL_MEM_LEVEL = 4


#: Size of the runs of zero bytes write_volume recognizes (a run is a whole number of these, aligned in its block;
#: write_volume_slabs knows its zero rows and takes rows as its units).
ZERO_UNIT_BYTES = 8 << 10
_ZERO_MEMBERS: Dict[Tuple[int, int, int], bytes] = {}


def _zero_member(units: int, level: int, unit_bytes: int) -> bytes:
    """gzip members holding ``units`` x ``unit_bytes`` zero bytes: one member per power of two in
    ``units``, each compressed once per process, unit and level."""
    members = []
    bit = 1
    while bit <= units:
        if units & bit:
            member = _ZERO_MEMBERS.get((unit_bytes, bit, level))
            if member is None:
                member = _ZERO_MEMBERS[(unit_bytes, bit, level)] = _gzip_member(bytes(bit * unit_bytes), level, zlib.DEF_MEM_LEVEL)
            members.append(member)
        bit <<= 1
    return b"".join(members)


def _zero_runs(chunk, data_units: Optional[np.ndarray] = None, unit_bytes: int = 0) -> Iterator[Tuple[int, memoryview]]:
    """A block as consecutive pieces: ``(n, empty)`` for ``n`` units of zero bytes (``unit_bytes`` each,
    default :data:`ZERO_UNIT_BYTES`), ``(0, bytes)`` for the rest.  The units holding data are found by
    looking at them, or given (``data_units``: ``False`` for each unit known to be zero)."""
    unit = unit_bytes or ZERO_UNIT_BYTES
    view = memoryview(chunk).cast("B")
    whole = len(view) // unit
    if whole == 0:
        yield 0, view
        return
    if data_units is None:
        nonzero = np.frombuffer(view[:whole * unit], dtype=np.uint64).reshape(whole, -1).any(axis=1)
    else:
        nonzero = data_units
    edges = np.flatnonzero(np.diff(nonzero.astype(np.int8))) + 1
    start = 0
    for end in [*edges.tolist(), whole]:
        if nonzero[start]:
            stop = len(view) if end == whole else end * unit  # the tail goes with data
            yield 0, view[start * unit:stop]
        else:
            yield end - start, view[:0]
            if end == whole and len(view) > whole * unit:
                yield 0, view[whole * unit:]
        start = end


_DTYPE_CODES = {"u1": (2, 8), "i2": (4, 16), "i4": (8, 32), "f4": (16, 32), "f8": (64, 64), "i1": (256, 8),
                "u2": (512, 16), "u4": (768, 32), "i8": (1024, 64), "u8": (1280, 64)}


def _quaternion(rotation: np.ndarray) -> Tuple[float, float, float]:
    """(b, c, d) of a proper rotation matrix (NIfTI-1 nifti_mat44_to_quatern)."""
    r = rotation
    a = r[0, 0] + r[1, 1] + r[2, 2] + 1.0
    if a > 0.5:
        a = 0.5 * np.sqrt(a)
        b, c, d = 0.25 * (r[2, 1] - r[1, 2]) / a, 0.25 * (r[0, 2] - r[2, 0]) / a, 0.25 * (r[1, 0] - r[0, 1]) / a
    else:
        xd, yd, zd = 1.0 + r[0, 0] - (r[1, 1] + r[2, 2]), 1.0 + r[1, 1] - (r[0, 0] + r[2, 2]), 1.0 + r[2, 2] - (r[0, 0] + r[1, 1])
        if xd > 1.0:
            b = 0.5 * np.sqrt(xd)
            c, d, a = 0.25 * (r[0, 1] + r[1, 0]) / b, 0.25 * (r[0, 2] + r[2, 0]) / b, 0.25 * (r[2, 1] - r[1, 2]) / b
        elif yd > 1.0:
            c = 0.5 * np.sqrt(yd)
            b, d, a = 0.25 * (r[0, 1] + r[1, 0]) / c, 0.25 * (r[1, 2] + r[2, 1]) / c, 0.25 * (r[0, 2] - r[2, 0]) / c
        else:
            d = 0.5 * np.sqrt(zd)
            b, c, a = 0.25 * (r[0, 2] + r[2, 0]) / d, 0.25 * (r[1, 2] + r[2, 1]) / d, 0.25 * (r[1, 0] - r[0, 1]) / d
        if a < 0.0:
            b, c, d = -b, -c, -d
    return float(b), float(c), float(d)


def _quaternion_rotation(b: float, c: float, d: float) -> np.ndarray:
    """The rotation matrix of a stored quaternion (b, c, d), as nifti1_io reads it (nifti1.h "METHOD 2"):
    a = sqrt(1 - b^2 - c^2 - d^2), taken as 0 (with b, c, d made a unit vector) when that is below 1e-7."""
    a2 = 1.0 - (b * b + c * c + d * d)
    if a2 < 1e-7:
        norm = np.sqrt(b * b + c * c + d * d)
        a, b, c, d = 0.0, b / norm, c / norm, d / norm
    else:
        a = np.sqrt(a2)
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ]
    )


def _rotation_and_qfac(matrix: np.ndarray) -> Tuple[np.ndarray, float]:
    """The proper rotation of a 3x3 direction (or affine) matrix and its qfac: the third column turned
    when the axes are left-handed, then made orthonormal (a direction read from float text is
    orthonormal only to ~1e-6)."""
    rotation = np.asarray(matrix, dtype=float) / np.linalg.norm(matrix, axis=0)
    qfac = 1.0
    if np.linalg.det(rotation) < 0:
        qfac = -1.0
        rotation = rotation.copy()
        rotation[:, 2] *= -1
    u, _, vt = np.linalg.svd(rotation)
    return u @ vt, qfac


def qform_storage_gap_mm(header: "NiftiHeader") -> float:
    """How far (mm, at the grid's corners) a qform can lie from the sform's grid through the NIfTI-1
    storage of its rotation alone: the sform's rotation (made orthonormal) as a float32 quaternion, read
    back, against that rotation.  Near a half turn (axial slices, LPS to RAS, a little oblique)
    a = sqrt(1 - b^2 - c^2 - d^2) is lost to float32 and the qform turns by up to ~1e-3 rad: a few
    hundredths of a mm across a field of view.  0 for an sform that is not finite or has a zero axis."""
    axes = header.sform[:3, :3]
    norms = np.linalg.norm(axes, axis=0)
    if not np.all(np.isfinite(axes)) or np.any(norms == 0):
        return 0.0
    rotation, qfac = _rotation_and_qfac(axes)
    b, c, d = (float(np.float32(v)) for v in _quaternion(rotation))
    error = _quaternion_rotation(b, c, d) - rotation
    corners = corner_indices(header.shape) * (norms * np.array([1.0, 1.0, qfac]))
    return float(np.max(np.abs(corners @ error.T)))


def nifti_header_bytes(geometry: ImageGeometry, dtype: np.dtype) -> bytes:
    """The 348-byte NIfTI-1 header of a volume on ``geometry`` with voxels of ``dtype``."""
    code, bitpix = _DTYPE_CODES[np.dtype(dtype).str[1:]]
    affine = geometry.ijk_to_ras_matrix()
    rotation, qfac = _rotation_and_qfac(np.asarray(geometry.direction) * np.array([-1.0, -1.0, 1.0])[:, None])  # RAS direction columns
    b, c, d = _quaternion(rotation)
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, *geometry.shape, 1, 1, 1, 1)
    struct.pack_into("<2h", header, 70, code, bitpix)
    struct.pack_into("<8f", header, 76, qfac, *geometry.spacing_mm, 1.0, 1.0, 1.0, 1.0)
    struct.pack_into("<f", header, 108, 352.0)  # vox_offset
    struct.pack_into("<2f", header, 112, 1.0, 0.0)  # scl_slope, scl_inter
    header[123] = 2 | 8  # xyzt_units: mm, s
    struct.pack_into("<2h", header, 252, 1, 1)  # qform_code, sform_code: scanner
    struct.pack_into("<6f", header, 256, b, c, d, *affine[:3, 3])
    struct.pack_into("<12f", header, 280, *affine[:3, :].ravel())
    header[344:348] = b"n+1\0"
    return bytes(header)


def smallest_label_dtype(max_label: int) -> np.dtype:
    """Smallest unsigned integer type holding ``max_label`` (RadLex IDs exceed 255 and 32767)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_label <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"label value {max_label} does not fit in 32 bits")


def _itk_reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        if "Description:" in line:
            return line.split("Description:", 1)[1].strip()
    return lines[-1] if lines else type(exc).__name__


# -- raw NIfTI-1 header --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NiftiHeader:
    """The fields of a NIfTI-1 header the validator needs."""

    dim: Tuple[int, ...]
    datatype: int
    pixdim: Tuple[float, ...]
    xyzt_units: int
    qform_code: int
    sform_code: int
    qform: np.ndarray  # 4x4 from the quaternion
    sform: np.ndarray  # 4x4 from srow_x/y/z
    descrip: str
    aux_file: str
    intent_name: str
    scl_slope: float
    scl_inter: float
    vox_offset: float
    byte_order: str  # "<" or ">"

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.dim[1 : 1 + self.dim[0]])


def read_nifti_header(path: PathLike) -> NiftiHeader:
    """Parse the NIfTI-1 header of ``path`` (``.nii`` or ``.nii.gz``) without reading voxels."""
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as handle:  # type: ignore[operator]
            raw = handle.read(348)
    except (OSError, EOFError) as exc:
        raise FileFormatError(path, f"cannot read the NIfTI header ({exc})") from None
    if len(raw) < 348:
        raise FileFormatError(path, "truncated NIfTI header")
    for endian in "<>":
        if struct.unpack(endian + "i", raw[:4])[0] == 348:
            break
    else:
        raise NotNifti1(path, "not a NIfTI-1 file (sizeof_hdr is not 348)")
    if raw[344:348] not in (b"n+1\0", b"ni1\0"):
        raise NotNifti1(path, f"not a NIfTI-1 file (magic {raw[344:348]!r})")

    def unpack(fmt: str, offset: int) -> Tuple:
        return struct.unpack_from(endian + fmt, raw, offset)

    dim = unpack("8h", 40)
    datatype = unpack("h", 70)[0]
    pixdim = unpack("8f", 76)
    vox_offset = unpack("f", 108)[0]
    scl_slope, scl_inter = unpack("2f", 112)
    xyzt_units = raw[123]
    qform_code, sform_code = unpack("2h", 252)
    b, c, d, qx, qy, qz = unpack("6f", 256)
    srow = np.array(unpack("12f", 280), dtype=float).reshape(3, 4)

    def text(start: int, length: int) -> str:
        return raw[start : start + length].split(b"\0", 1)[0].decode("latin-1")

    qfac = -1.0 if pixdim[0] < 0 else 1.0
    qform = np.eye(4)
    qform[:3, :3] = _quaternion_rotation(b, c, d) @ np.diag([pixdim[1], pixdim[2], qfac * pixdim[3]])
    qform[:3, 3] = (qx, qy, qz)
    sform = np.eye(4)
    sform[:3, :] = srow
    return NiftiHeader(
        tuple(dim), datatype, tuple(pixdim), xyzt_units, qform_code, sform_code, qform, sform,
        text(148, 80), text(228, 24), text(328, 16), float(scl_slope), float(scl_inter), float(vox_offset), endian,
    )


#: NIfTI-1 datatype codes -> numpy types.
NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8", 1280: "u8"}


def read_nifti_voxels(path: PathLike) -> np.ndarray:
    """The stored voxel values of a 3D NIfTI-1 file, ``[k, j, i]``, scaled by scl_slope/scl_inter when set.

    Read directly from the file, because SimpleITK 2.5's NIfTI reader silently turns
    NaN into 0 -- the validator must see what is really stored.
    """
    header = read_nifti_header(path)
    code = NIFTI_DTYPES.get(header.datatype)
    if code is None:
        raise NotNifti1(path, f"unsupported NIfTI datatype {header.datatype}")
    shape = header.shape
    if len(shape) < 3 or any(n != 1 for n in shape[3:]):
        raise FileFormatError(path, f"expected a 3D volume, found dimensions {list(shape)}")
    count = int(np.prod(shape[:3]))
    dtype = np.dtype(header.byte_order + code)
    offset = int(header.vox_offset) if header.vox_offset >= 352 else 352
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as handle:  # type: ignore[operator]
            handle.seek(offset)
            data = handle.read(count * dtype.itemsize)
    except (OSError, EOFError) as exc:
        raise FileFormatError(path, f"cannot read the voxel data ({exc})") from None
    except MemoryError:
        raise FileFormatError(path, f"its dimensions {list(shape[:3])} ask for {count * dtype.itemsize} bytes of voxels: more than this machine holds") from None
    if len(data) < count * dtype.itemsize:
        raise FileFormatError(path, "truncated voxel data")
    values = np.frombuffer(data, dtype=dtype).reshape(tuple(reversed(shape[:3])))
    # Scaled as nifti1_io does: a slope of 0, or a slope or intercept that is not finite, means none.
    slope, inter = header.scl_slope, header.scl_inter
    if np.isfinite(slope) and np.isfinite(inter) and slope != 0.0 and (slope != 1.0 or inter != 0.0):
        values = values * slope + inter
    return values
