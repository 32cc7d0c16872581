"""Qt-free bridge between MRML nodes and the pure-logic package ``visceral``.

Runs inside 3D Slicer and on the bare MRML library of the ``slicer-core`` package (tests).
Every exchange of voxels goes through world coordinates, because Slicer's IJK is not always the
file's: for a left-handed NIfTI grid Slicer reverses the k axis (found on slicer-core 5.13,
``Testing/test_frames.py``).  Annotations are therefore written on the *file* grid of their image
(read from the image file) and re-indexed from Slicer's grid with
:meth:`visceral.conventions.frames.ImageGeometry.array_from`.

Traps handled here (measured on slicer-core 5.13, shared/reference/slicer-core-headless.md):

- ``ExportSegmentsToLabelmapNode`` writes signed 16-bit labels, clamping RadLex IDs above 32767
  (rectus abdominis 40357/40358).  The bridge reads each labelmap layer as the segmentation holds it
  and maps the segments' values in it to label values from the registry with a lookup table (a segment
  off the reference lattice is exported alone, as a 0/1 mask), so nothing is clamped.
- ``.mrk.json`` stores control points in LPS but a per-point measurement verbatim.  The bridge keeps
  the covariance measurement in Slicer's world frame (RAS) and says so in the measurement.
- Per-point measurement values do not follow point insertion or removal: they are rebuilt from
  the points whenever the bridge writes them.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import slicer
import vtk
from vtk.util.numpy_support import numpy_to_vtk, vtk_to_numpy

from visceral.annotations import export_landmarks, export_uncertainty_volumes, import_landmarks
from visceral.annotations.regions import LabelVolumeBuilder
from visceral.annotations.regions import read_region_annotation, read_uncertainty_volume
from visceral.conventions.frames import ImageGeometry
from visceral.conventions.labels import Structure, StructureRegistry, default_registry
from visceral.conventions.landmarks import landmark_id_of_label, read_landmarks, write_landmarks
from visceral.conventions.names import FileKind, VisceralName, parse_name
from visceral.errors import InvalidNameError, VisceralError
from visceral.imageio import read_geometry

#: Node attributes the import sets and the exports read.
ATTRIBUTE_SUBJECT = "Visceral.Subject"
ATTRIBUTE_ACQUISITION = "Visceral.Acquisition"
ATTRIBUTE_MODALITY = "Visceral.Modality"
ATTRIBUTE_FILE = "Visceral.File"
#: Name, units and description of the per-control-point covariance measurement.
COVARIANCE_MEASUREMENT = "covariance"
COVARIANCE_UNITS = "mm2"
COVARIANCE_DESCRIPTION = "3x3 position covariance, row-major c11..c33, in the world frame RAS"


# -- volumes -------------------------------------------------------------------------------------------


def matrixToNumpy(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    """A ``vtkMatrix4x4`` as a 4x4 array."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def geometryFromVolumeNode(volumeNode) -> ImageGeometry:
    """The grid of a volume node as Slicer indexes it (IJKToRAS and dimensions)."""
    m = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(m)
    return ImageGeometry.from_ijk_to_ras(matrixToNumpy(m), volumeNode.GetImageData().GetDimensions())


def arrayFromVolumeNode(volumeNode) -> np.ndarray:
    """Voxels ``[k, j, i]`` of a scalar volume node (a copy)."""
    image = volumeNode.GetImageData()
    dims = image.GetDimensions()
    return vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[::-1]).copy()


def fileGeometry(volumeNode) -> ImageGeometry:
    """The grid of the file a volume node was loaded from (its :data:`ATTRIBUTE_FILE` or storage
    node), else the node's own grid."""
    path = volumeNode.GetAttribute(ATTRIBUTE_FILE)
    storage = volumeNode.GetStorageNode()
    if not path and storage is not None:
        path = storage.GetFileName()
    if path and Path(path).is_file() and path.endswith((".nii", ".nii.gz")):
        return read_geometry(path)
    return geometryFromVolumeNode(volumeNode)


def loadVolume(scene, path: str) -> "slicer.vtkMRMLScalarVolumeNode":
    """Load a data-set image into ``scene``, named by the conventions, with its tokens as attributes."""
    name = parse_name(Path(path).name)
    node = slicer.vtkMRMLScalarVolumeNode()
    node.SetName(name.image().stem())
    scene.AddNode(node)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise VisceralError(f"{path}: Slicer could not read the volume")
    node.SetAndObserveStorageNodeID(storage.GetID())
    setVolumeTokens(node, name, str(path))
    return node


def setVolumeTokens(node, name: VisceralName, path: str = "") -> None:
    """Keep subject, acquisition, modality (and the file) on the node for the exports."""
    node.SetAttribute(ATTRIBUTE_SUBJECT, str(name.subject))
    node.SetAttribute(ATTRIBUTE_ACQUISITION, str(name.acquisition))
    node.SetAttribute(ATTRIBUTE_MODALITY, name.modality or "")
    if path:
        node.SetAttribute(ATTRIBUTE_FILE, path)


def volumeFolder(node) -> Optional[str]:
    """The folder of the file a node was loaded from by :func:`loadVolume` (``None`` when unknown)."""
    path = node.GetAttribute(ATTRIBUTE_FILE)
    return str(Path(path).parent) if path else None


def volumeTokens(node) -> Optional[VisceralName]:
    """The image name of a node loaded by :func:`loadVolume` (``None`` when it has no tokens)."""
    subject, acquisition = node.GetAttribute(ATTRIBUTE_SUBJECT), node.GetAttribute(ATTRIBUTE_ACQUISITION)
    if not subject or not acquisition:
        try:
            return parse_name(node.GetName() + ".nii.gz")
        except InvalidNameError:
            return None
    return VisceralName(int(subject), int(acquisition), node.GetAttribute(ATTRIBUTE_MODALITY) or None)


# -- segmentations -------------------------------------------------------------------------------------


@dataclass
class SegmentMapping:
    """Segment IDs mapped to registry structures, and the segments that map to none."""

    structures: Dict[str, Structure] = field(default_factory=dict)  # segment ID -> structure
    unknown: List[Tuple[str, str]] = field(default_factory=list)  # (segment ID, segment name)
    #: (segment name, segment name, structure) of two segments mapping to one structure
    duplicates: List[Tuple[str, str, str]] = field(default_factory=list)


def _terminology(segment) -> str:
    if hasattr(segment, "GetTerminology"):
        return segment.GetTerminology() or ""
    tag = vtk.mutable("")
    segment.GetTag("TerminologyEntry", tag)
    return str(tag)


def mapSegments(segmentationNode, registry: Optional[StructureRegistry] = None) -> SegmentMapping:
    """Map each segment to a structure: by its terminology entry (SNOMED CT type and modifier),
    else by its name (registry names and synonyms)."""
    registry = registry or default_registry()
    segmentation = segmentationNode.GetSegmentation()
    mapping = SegmentMapping()
    seen: Dict[str, str] = {}  # structure name -> the first segment's name
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        structure = None
        entry = _terminology(segment)
        if entry:
            try:
                structure = registry.from_slicer_terminology(entry)
            except VisceralError:
                structure = None
        if structure is None:
            try:
                structure = registry.lookup(segment.GetName())
            except VisceralError:
                mapping.unknown.append((segment_id, segment.GetName()))
                continue
        if structure.name in seen:
            mapping.duplicates.append((seen[structure.name], segment.GetName(), structure.name))
            continue
        seen[structure.name] = segment.GetName()
        mapping.structures[segment_id] = structure
    return mapping


def segmentMasks(segmentationNode, segmentIDs: Sequence[str], referenceVolumeNode) -> Tuple[Dict[str, np.ndarray], Dict[str, int]]:
    """Binary masks ``[k, j, i]`` of segments on the reference volume's grid (Slicer's indexing),
    and for each segment the number of its voxels outside that grid.

    Each segment is exported alone (values 0/1) so Slicer's int16 label export cannot clamp anything.
    """
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    scene = segmentationNode.GetScene()
    reference = geometryFromVolumeNode(referenceVolumeNode)
    masks: Dict[str, np.ndarray] = {}
    outside: Dict[str, int] = {}
    for segment_id in segmentIDs:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        labelmap = slicer.vtkMRMLLabelMapVolumeNode()
        scene.AddNode(labelmap)
        try:
            if not logic.ExportSegmentsToLabelmapNode(segmentationNode, ids, labelmap, referenceVolumeNode, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY):
                raise VisceralError(f"Slicer could not export segment {segment_id}")
            masks[segment_id] = arrayFromVolumeNode(labelmap) != 0
        finally:
            scene.RemoveNode(labelmap)
        outside[segment_id] = _voxelsOutside(segmentationNode, segment_id, referenceVolumeNode, reference)
    return masks, outside


@dataclass
class LayerCrop:
    """Segments of one labelmap layer as a box of the reference volume's Slicer grid, cut to the voxels
    they fill: the layer's values ``[k, j, i]`` there (a view of the layer's own array when the layer
    lies on the reference lattice), the index of the box's first voxel, each segment's value in the
    layer, the segments with voxels inside the grid, and each segment's voxels outside it."""

    values: np.ndarray
    start_kji: Tuple[int, int, int]
    segments: Dict[str, int]  # segment ID -> its value in the layer
    filled: List[str]  # the segments with voxels inside the reference grid
    outside: Dict[str, int]  # segment ID -> its voxels outside the reference grid

    def mask(self, segmentID: str) -> np.ndarray:
        """The box of one segment, boolean."""
        return self.values == self.segments[segmentID]

    @classmethod
    def around(cls, values: np.ndarray, lo_kji: Sequence[int], dims_kji: Sequence[int], segments: Dict[str, int]) -> "LayerCrop":
        """The crop of the box ``values`` (its first voxel at ``lo_kji`` of a grid of ``dims_kji`` voxels,
        may reach outside it) down to the grid and to the voxels the segments fill there."""
        lo = np.asarray(lo_kji)
        inside_lo = np.maximum(lo, 0)
        inside_hi = np.maximum(np.minimum(lo + np.asarray(values.shape), np.asarray(dims_kji)), inside_lo)
        a, b = inside_lo - lo, inside_hi - lo
        inside = values[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
        outside = dict.fromkeys(segments, 0)
        if inside.shape != values.shape:
            counts, whole = _valueCounts(inside, segments.values()), _valueCounts(values, segments.values())
            outside = {s: whole[v] - counts[v] for s, v in segments.items()}
        if len(segments) == 1 and _fillsEveryFace(inside, next(iter(segments.values()))):
            return cls(inside, tuple(int(n) for n in inside_lo), segments, list(segments), outside)  # type: ignore[arg-type]
        counts = _valueCounts(inside, segments.values())
        filled = [s for s, v in segments.items() if counts[v] > 0]
        nonzero = inside != 0
        spans = [np.flatnonzero(nonzero.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1))]
        if not filled or any(span.size == 0 for span in spans):
            return cls(np.zeros((0, 0, 0), dtype=values.dtype), (0, 0, 0), segments, filled, outside)
        first = [int(span[0]) for span in spans]
        last = [int(span[-1]) + 1 for span in spans]
        start = tuple(int(s) + n for s, n in zip(inside_lo, first))
        return cls(inside[first[0]:last[0], first[1]:last[1], first[2]:last[2]], start, segments, filled, outside)  # type: ignore[arg-type]


def _fillsEveryFace(values: np.ndarray, value: int) -> bool:
    """Whether ``value`` is on each of the six faces of the box (then no smaller box holds all of it)."""
    if values.size == 0:
        return False
    faces = (values[0], values[-1], values[:, 0], values[:, -1], values[:, :, 0], values[:, :, -1])
    return all(bool((face == value).any()) for face in faces)


def _valueCounts(values: np.ndarray, keys) -> Dict[int, int]:
    """How many voxels of ``values`` hold each of ``keys`` (one pass for all of them)."""
    keys = [int(k) for k in keys]
    if len(keys) == 1:
        return {keys[0]: int(np.count_nonzero(values == keys[0]))}
    if values.dtype.itemsize > 2:
        found, counts = np.unique(values, return_counts=True)
        return {k: int(counts[found == k].sum()) for k in keys}
    flat = values.view(values.dtype.str.replace("i", "u")) if values.dtype.kind == "i" else values
    total = np.zeros(1 << (8 * flat.dtype.itemsize), dtype=np.int64)
    for k in range(flat.shape[0]):  # a slice at a time: bincount counts in an integer array the size of its input
        total += np.bincount(flat[k].ravel(), minlength=total.size)
    return {k: int(total[k]) for k in keys}


def _layerCrop(segmentationNode, image, segmentIDs: Sequence[str], referenceVolumeNode) -> Optional[LayerCrop]:
    """The segments ``segmentIDs`` of a labelmap layer (``image``, the binary labelmap they share) taken
    as the layer holds them -- no export, no resampling, no copy -- or ``None`` when the layer lies on
    another lattice than the reference volume (finer, rotated, shifted by a fraction of a voxel, or
    through a non-linear transform: then Slicer must resample, see :func:`segmentMasks`)."""
    segmentation = segmentationNode.GetSegmentation()
    values = {s: int(segmentation.GetSegment(s).GetLabelValue()) for s in segmentIDs}
    reference = geometryFromVolumeNode(referenceVolumeNode)
    dims = tuple(reversed(reference.shape))
    extent = image.GetExtent() if image is not None else (0, -1, 0, -1, 0, -1)
    if extent[1] < extent[0] or extent[3] < extent[2] or extent[5] < extent[4] or image.GetPointData().GetScalars() is None:
        return LayerCrop(np.zeros((0, 0, 0), dtype=np.uint8), (0, 0, 0), values, [], dict.fromkeys(values, 0))
    m = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(m)
    r = vtk.vtkMatrix4x4()
    referenceVolumeNode.GetIJKToRASMatrix(r)
    to_reference = _segmentationToReference(segmentationNode, referenceVolumeNode)
    if to_reference is None or not np.allclose(to_reference @ matrixToNumpy(m), matrixToNumpy(r), atol=1e-6):
        return None
    size = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    array = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(size)
    return LayerCrop.around(array, (extent[4], extent[2], extent[0]), dims, values)


def _voxelsOutside(segmentationNode, segmentID: str, referenceVolumeNode, reference: ImageGeometry) -> int:
    """Voxels of a segment (its own labelmap, any lattice, moved by the transforms between the two
    nodes) whose centres lie outside the reference volume's grid ``reference``."""
    image = slicer.vtkOrientedImageData()
    segmentationNode.GetBinaryLabelmapRepresentation(segmentID, image)
    extent = image.GetExtent()
    if extent[1] < extent[0] or image.GetPointData().GetScalars() is None:
        return 0
    dims = image.GetDimensions()
    values = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[::-1])
    k, j, i = np.nonzero(values)
    if k.size == 0:
        return 0
    ijk = np.column_stack([i + extent[0], j + extent[2], k + extent[4]]).astype(float)
    m = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(m)
    local = ijk @ matrixToNumpy(m)[:3, :3].T + matrixToNumpy(m)[:3, 3]  # the segmentation node's own frame
    to_reference = _segmentationToReference(segmentationNode, referenceVolumeNode)
    if to_reference is not None:
        points = local @ to_reference[:3, :3].T + to_reference[:3, 3]
    else:
        transform = vtk.vtkGeneralTransform()
        slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(segmentationNode.GetParentTransformNode(), referenceVolumeNode.GetParentTransformNode(), transform)
        points = np.array([transform.TransformPoint(p) for p in local], dtype=float).reshape(-1, 3)
    return int(np.count_nonzero(~reference.contains_index(reference.world_to_index(points, "RAS"), 0.5)))


@dataclass
class SegmentationExport:
    """What an export wrote, and what the user should know about it."""

    files: List[str]
    labels: Dict[str, int]
    warnings: List[str] = field(default_factory=list)


def checkFileGrid(referenceVolumeNode) -> ImageGeometry:
    """The reference volume's file grid, after checking the volume still stands where its file puts it:
    the same voxels at the same places, indexed as Slicer indexes the file when it reads it (the
    same axes; k reversed for a left-handed grid).  A volume moved or mirrored by a hardened transform
    would make 'the file's grid' and 'what the user annotated on' two different things.

    Raises:
        VisceralError: the volume was moved since it was loaded.
    """
    file_grid = fileGeometry(referenceVolumeNode)
    slicer_grid = geometryFromVolumeNode(referenceVolumeNode)
    same_axes = ((0, False), (1, False), (2, False))
    k_reversed = ((0, False), (1, False), (2, True))
    accepted = (same_axes, k_reversed) if np.linalg.det(file_grid.direction) < 0 else (same_axes,)
    if slicer_grid.axis_map(file_grid, tolerance_mm=1e-2) not in accepted:
        raise VisceralError(f"the reference volume {referenceVolumeNode.GetName()!r} no longer stands where its file puts it "
                            "(a transform was hardened on it?): reload it before exporting annotations of its file")
    return file_grid


def _segmentationToReference(segmentationNode, referenceVolumeNode) -> Optional[np.ndarray]:
    """The 4x4 matrix from the segmentation node's own frame to the reference volume's own frame (their
    parent transforms: the segmentation's applied, the reference's undone), or ``None`` when a
    transform between them is not linear."""
    m = vtk.vtkMatrix4x4()
    if not slicer.vtkMRMLTransformNode.GetMatrixTransformBetweenNodes(
            segmentationNode.GetParentTransformNode(), referenceVolumeNode.GetParentTransformNode(), m):
        return None
    return matrixToNumpy(m)


def _worldToReference(points, covariances: Sequence[Optional[np.ndarray]], referenceVolumeNode) -> Tuple[np.ndarray, List[Optional[np.ndarray]]]:
    """World RAS points (and their covariances) into the reference volume's own frame -- its parent
    transforms undone, as Slicer does for segmentations exported onto a transformed reference."""
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    covariances = list(covariances)
    parent = referenceVolumeNode.GetParentTransformNode()
    if parent is None or len(points) == 0:
        return points, covariances
    if parent.IsTransformToWorldLinear():
        m = vtk.vtkMatrix4x4()
        parent.GetMatrixTransformFromWorld(m)
        matrix = matrixToNumpy(m)
        linear = matrix[:3, :3]
        moved = [None if c is None else linear @ c @ linear.T for c in covariances]
        return points @ linear.T + matrix[:3, 3], moved
    if any(c is not None for c in covariances):
        raise VisceralError("the reference volume is under a non-linear transform: covariances cannot be carried into its frame")
    transform = vtk.vtkGeneralTransform()
    slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(None, parent, transform)
    return np.array([transform.TransformPoint(p) for p in points], dtype=float), covariances


def exportSegmentation(
    segmentationNode,
    referenceVolumeNode,
    folder: str,
    annotation: VisceralName,
    uncertainty: bool = False,
    overwrite: bool = False,
    registry: Optional[StructureRegistry] = None,
) -> SegmentationExport:
    """Write a segmentation as a VISCERAL region annotation of its reference image.

    Multi-label NIfTI + label table CSV, or (``uncertainty``) one 0/1 float volume per structure.
    Label values come from the registry, never from segment order.  Refused (nothing written):
    unknown segments, segments reaching outside the reference volume, overlapping segments (for a
    label volume), existing files unless ``overwrite``.
    """
    registry = registry or default_registry()
    if annotation.kind not in (FileKind.REGION, FileKind.REGION_LABEL) or annotation.annotator is None:
        raise VisceralError("the annotation name must be a region annotation with an annotator")
    mapping = mapSegments(segmentationNode, registry)
    if mapping.unknown:
        names = ", ".join(repr(n) for _, n in mapping.unknown)
        raise VisceralError(f"segments with no RadLex structure (rename them or set their terminology): {names}")
    if mapping.duplicates:
        details = "; ".join(f"{a!r} and {b!r} are both {structure}" for a, b, structure in mapping.duplicates)
        raise VisceralError(f"two segments map to one RadLex structure ({details}): merge or rename them")
    if not mapping.structures:
        raise VisceralError("the segmentation has no segments")
    file_grid = checkFileGrid(referenceVolumeNode)
    slicer_grid = geometryFromVolumeNode(referenceVolumeNode)
    if not segmentationNode.GetSegmentation().ContainsRepresentation(slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()):
        segmentationNode.CreateBinaryLabelmapRepresentation()  # segments held as surfaces only: voxels first, as Slicer's own export does
    crops, warnings = _layerCrops(segmentationNode, mapping, referenceVolumeNode, slicer_grid)
    beyond = {mapping.structures[s].name: n for c in crops for s, n in c.outside.items() if n > 0}
    if beyond:
        details = "; ".join(f"{name}: {n} voxels" for name, n in beyond.items())
        raise VisceralError(f"segments reach outside the reference volume ({details}); crop them in the Segment Editor first")
    filled = {s for c in crops for s in c.filled}
    for segment_id in [s for s in mapping.structures if s not in filled]:
        warnings.append(f"segment {mapping.structures[segment_id].name!r} is empty: left out of the export")
    if not filled:
        raise VisceralError("every segment is empty: nothing to export")
    names = [mapping.structures[s].name for s in mapping.structures if s in filled]
    base = annotation.annotation(FileKind.REGION)
    if uncertainty:
        full = {}
        for crop in crops:
            for segment_id in [s for s in crop.segments if s in filled]:
                mask, (k, j, i) = file_grid.crop_from(crop.mask(segment_id), crop.start_kji, slicer_grid)
                volume_mask = np.zeros(tuple(reversed(file_grid.shape)), dtype=bool)
                volume_mask[k:k + mask.shape[0], j:j + mask.shape[1], i:i + mask.shape[2]] = mask
                full[mapping.structures[segment_id].name] = volume_mask
        full = {name: full[name] for name in names}
        written = export_uncertainty_volumes(full, file_grid, base, folder, registry, overwrite=overwrite)
        return SegmentationExport([str(p) for p in written.values()], {n: registry.lookup(n).radlex_id for n in written}, warnings)
    builder = LabelVolumeBuilder(names, file_grid, registry)
    for crop in crops:
        segments = {value: mapping.structures[s].name for s, value in crop.segments.items() if s in filled}
        if segments:
            values, start = file_grid.crop_from(crop.values, crop.start_kji, slicer_grid)
            builder.add_layer(values, start, segments)
    volume = Path(folder) / base.format()
    table = builder.write(volume, overwrite=overwrite)
    return SegmentationExport([str(volume), str(volume.with_name(base.with_extension(".csv").format()))], table.as_dict(), warnings)


def scoreSegmentation(segmentationNode, imageNode, referenceFolder: str, referenceAnnotator: Optional[int] = None, resample: bool = False):
    """Score a segmentation against the reference annotations of its image (a node loaded by :func:`loadVolume`)
    in the data set ``referenceFolder``: exported by the conventions (:func:`exportSegmentation`) into a
    temporary data set, then scored by ``visceral.evaluate`` for that image alone; returns its ``EvaluationReport``.
    """
    from visceral.evaluate import evaluate

    image = volumeTokens(imageNode)
    if image is None:
        raise VisceralError("the image has no VISCERAL name: load it from a data set")
    key = (image.subject, image.acquisition, image.modality, image.body_region)
    with tempfile.TemporaryDirectory(prefix="visceral-score-") as results:
        exportSegmentation(segmentationNode, imageNode, results, image.annotation(FileKind.REGION, 1))
        # Only the segmentation is scored: the reference's other annotations of the image (landmarks) are said, not scored as empty.
        return evaluate(referenceFolder, results, images=[key], reference_annotator=referenceAnnotator, resample=resample, missing_as_empty=False)


def _layerCrops(segmentationNode, mapping: SegmentMapping, referenceVolumeNode, slicer_grid: ImageGeometry) -> Tuple[List[LayerCrop], List[str]]:
    """The mapped segments as boxes of the reference lattice, a layer at a time: taken as the layer
    holds them where it lies on that lattice (the usual case: no export at all), else each segment
    exported by Slicer onto it (resampled, always with a warning that names the segment and its
    change of volume)."""
    segmentation = segmentationNode.GetSegmentation()
    labelmap = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    layers: Dict[str, Tuple[object, List[str]]] = {}  # the address of a labelmap -> it, the segments it holds
    for segment_id in mapping.structures:
        image = segmentation.GetSegment(segment_id).GetRepresentation(labelmap)
        key = image.GetAddressAsString("vtkObject") if image is not None else segment_id
        layers.setdefault(key, (image, []))[1].append(segment_id)
    crops: List[LayerCrop] = []
    warnings: List[str] = []
    for image, ids in layers.values():
        crop = _layerCrop(segmentationNode, image, ids, referenceVolumeNode)
        if crop is not None:
            crops.append(crop)
            continue
        for segment_id in ids:
            masks, outside = segmentMasks(segmentationNode, [segment_id], referenceVolumeNode)
            crop = LayerCrop.around(masks[segment_id].view(np.uint8), (0, 0, 0), masks[segment_id].shape, {segment_id: 1})
            crop.outside[segment_id] = outside[segment_id]
            crops.append(crop)
            own, own_volume = _ownVoxels(segmentationNode, segment_id)
            ref_volume = float(np.prod(slicer_grid.spacing_mm))
            got = int(np.count_nonzero(crop.values))
            if own:
                change = 100.0 * (got * ref_volume - own * own_volume) / (own * own_volume)
                warnings.append(f"segment {mapping.structures[segment_id].name!r} is not on the reference image's voxel lattice: resampled, "
                                f"{own} voxels of its own grid became {got} (volume {change:+.0f} %)")
    return crops, warnings


def _ownVoxels(segmentationNode, segmentID: str) -> Tuple[int, float]:
    """A segment's voxels on its own labelmap lattice, and that lattice's voxel volume (mm^3)."""
    image = slicer.vtkOrientedImageData()
    segmentationNode.GetBinaryLabelmapRepresentation(segmentID, image)
    scalars = image.GetPointData().GetScalars()
    extent = image.GetExtent()
    if scalars is None or extent[1] < extent[0]:
        return 0, 0.0
    m = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(m)
    axes = matrixToNumpy(m)[:3, :3]
    return int(np.count_nonzero(vtk_to_numpy(scalars))), float(abs(np.linalg.det(axes)))


#: The node attribute naming the structure a probability (uncertainty) volume is of.
ATTRIBUTE_STRUCTURE = "Visceral.Structure"


def exportProbabilityMaps(
    volumeNodes: Sequence,
    referenceVolumeNode,
    folder: str,
    annotation: VisceralName,
    overwrite: bool = False,
    registry: Optional[StructureRegistry] = None,
) -> SegmentationExport:
    """Write scalar volumes of probabilities in [0, 1] (one per structure) as the per-structure
    uncertainty volumes of a region annotation (seed 3.1), on the reference image's file grid.

    A volume names its structure by its ``Visceral.Structure`` attribute, else by its node name
    (registry names and synonyms).  Refused, nothing written: a volume of no or a repeated structure,
    a volume on another grid than the reference, values outside [0, 1] or not finite.
    """
    registry = registry or default_registry()
    if not volumeNodes:
        raise VisceralError("no probability volumes to export")
    file_grid = checkFileGrid(referenceVolumeNode)
    slicer_grid = geometryFromVolumeNode(referenceVolumeNode)
    maps: Dict[str, np.ndarray] = {}
    for node in volumeNodes:
        label = node.GetAttribute(ATTRIBUTE_STRUCTURE) or node.GetName()
        try:
            structure = registry.lookup(label)
        except VisceralError:
            raise VisceralError(f"probability volume {node.GetName()!r}: {label!r} is no RadLex structure (rename it)") from None
        if structure.name in maps:
            raise VisceralError(f"two probability volumes of {structure.name}: {node.GetName()!r} and another")
        grid = geometryFromVolumeNode(node)
        if not grid.same_grid(slicer_grid, 1e-3):
            raise VisceralError(f"probability volume {node.GetName()!r} is not on the reference image's grid (resample it first)")
        maps[structure.name] = file_grid.array_from(arrayFromVolumeNode(node).astype(np.float32), slicer_grid)
    written = export_uncertainty_volumes(maps, file_grid, annotation.annotation(FileKind.REGION), folder, registry, overwrite=overwrite)
    return SegmentationExport([str(p) for p in written.values()], {n: registry.lookup(n).radlex_id for n in written})


def importProbabilityMap(scene, path: str, referenceVolumeNode, registry: Optional[StructureRegistry] = None):
    """Load one per-structure uncertainty volume (``..._regionannotation_label58_3.nii.gz``) as a scalar
    volume on its reference image, named by its structure (the annotation's label table when there is
    one, else the label as a RadLex ID)."""
    name = parse_name(path)
    if name.kind is not FileKind.REGION_LABEL:
        raise VisceralError(f"{path}: not a per-structure (uncertainty) volume of a region annotation")
    structure, values, grid = read_uncertainty_volume(path, fileGeometry(referenceVolumeNode), registry)
    slicer_grid = geometryFromVolumeNode(referenceVolumeNode)
    values = slicer_grid.array_from(values, grid)
    node = volumeOnReference(scene, slicer.vtkMRMLScalarVolumeNode(), values.astype(np.float32, copy=False), referenceVolumeNode)
    node.SetName(f"{structure} (probability, annotator {name.annotator})")
    node.SetAttribute(ATTRIBUTE_STRUCTURE, structure)
    return node


def labelmapNode(scene, labels: np.ndarray, referenceVolumeNode) -> "slicer.vtkMRMLLabelMapVolumeNode":
    """A label map node holding ``labels`` (``[k, j, i]`` on the reference volume's Slicer grid) on the
    reference volume's lattice; the caller removes it from the scene when done."""
    scalars = labels.astype(np.uint16) if labels.dtype == np.bool_ or labels.dtype.kind in "iu" and labels.max(initial=0) < 65536 else labels
    return volumeOnReference(scene, slicer.vtkMRMLLabelMapVolumeNode(), scalars, referenceVolumeNode)


def volumeOnReference(scene, node, values: np.ndarray, referenceVolumeNode):
    """``node`` (a volume node of any kind) added to ``scene`` holding ``values`` (``[k, j, i]`` on the
    reference volume's Slicer grid, copied) on the reference volume's lattice."""
    scene.AddNode(node)
    image = vtk.vtkImageData()
    image.SetDimensions(*geometryFromVolumeNode(referenceVolumeNode).shape)
    image.GetPointData().SetScalars(numpy_to_vtk(np.ascontiguousarray(values).ravel(), deep=True))
    node.SetAndObserveImageData(image)
    m = vtk.vtkMatrix4x4()
    referenceVolumeNode.GetIJKToRASMatrix(m)
    node.SetIJKToRASMatrix(m)
    return node


def importRegionAnnotation(scene, path: str, referenceVolumeNode, registry: Optional[StructureRegistry] = None):
    """Load a multi-label region annotation (+ its CSV) as a segmentation node on its reference image.

    Segments are named by structure, carry their Slicer terminology entry and keep their label value.
    """
    registry = registry or default_registry()
    annotation = read_region_annotation(path, reference=fileGeometry(referenceVolumeNode))
    slicer_grid = geometryFromVolumeNode(referenceVolumeNode)
    labels = slicer_grid.array_from(annotation.labels, annotation.geometry)
    labelmap = labelmapNode(scene, labels, referenceVolumeNode)
    segmentation = slicer.vtkMRMLSegmentationNode()
    segmentation.SetName(parse_name(path).stem())
    scene.AddNode(segmentation)
    try:
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolumeNode)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation):
            raise VisceralError(f"{path}: Slicer could not import the label volume")
    finally:
        scene.RemoveNode(labelmap)
    names = {value: name for name, value in annotation.table.entries}
    seg = segmentation.GetSegmentation()
    for index in range(seg.GetNumberOfSegments()):
        segment = seg.GetSegment(seg.GetNthSegmentID(index))
        name = names.get(segment.GetLabelValue())
        if name is None:
            continue
        segment.SetName(name)
        try:
            entry = registry.lookup(name).slicer_terminology()
            if hasattr(segment, "SetTerminology"):
                segment.SetTerminology(entry)
            else:
                segment.SetTag("TerminologyEntry", entry)
        except VisceralError:
            pass
    return segmentation


# -- markups -------------------------------------------------------------------------------------------


def markupsCovariances(markupsNode) -> List[Optional[np.ndarray]]:
    """Per control point its 3x3 covariance (RAS, mm^2) from the ``covariance`` measurement, or ``None``."""
    count = markupsNode.GetNumberOfControlPoints()
    for index in range(markupsNode.GetNumberOfMeasurements()):
        measurement = markupsNode.GetNthMeasurement(index)
        if measurement.GetName() != COVARIANCE_MEASUREMENT:
            continue
        values = measurement.GetControlPointValues()
        if values is None or values.GetNumberOfComponents() != 9:
            raise VisceralError("the 'covariance' measurement must have 9 components per control point")
        if values.GetNumberOfTuples() != count:
            raise VisceralError(f"the 'covariance' measurement has {values.GetNumberOfTuples()} values for {count} control points "
                                "(points were added or removed after it was set)")
        array = vtk_to_numpy(values).reshape(count, 3, 3)
        out: List[Optional[np.ndarray]] = []
        for n, c in enumerate(array):
            if np.all(np.isnan(c)):
                out.append(None)  # not set (how the bridge stores "no covariance")
            elif not np.all(np.isfinite(c)):
                raise VisceralError(f"control point {markupsNode.GetNthControlPointLabel(n)!r}: its covariance holds "
                                    "NaN or infinite values; set all nine or none")
            else:
                out.append(c.copy())
        return out
    return [None] * count


def setMarkupsCovariances(markupsNode, covariances: Sequence[Optional[np.ndarray]]) -> None:
    """Store per-point covariances (RAS, mm^2) as the ``covariance`` measurement; ``None`` -> NaN."""
    count = markupsNode.GetNumberOfControlPoints()
    if len(covariances) != count:
        raise VisceralError(f"{len(covariances)} covariances for {count} control points")
    for index in reversed(range(markupsNode.GetNumberOfMeasurements())):
        if markupsNode.GetNthMeasurement(index).GetName() == COVARIANCE_MEASUREMENT:
            markupsNode.RemoveNthMeasurement(index)
    values = np.full((count, 9), np.nan)
    for n, cov in enumerate(covariances):
        if cov is not None:
            values[n] = np.asarray(cov, dtype=float).reshape(9)
    array = numpy_to_vtk(values, deep=True)
    array.SetNumberOfComponents(9)
    measurement = slicer.vtkMRMLStaticMeasurement()
    measurement.SetName(COVARIANCE_MEASUREMENT)
    measurement.SetUnits(COVARIANCE_UNITS)
    measurement.SetDescription(COVARIANCE_DESCRIPTION)
    measurement.SetControlPointValues(array)
    markupsNode.AddMeasurement(measurement)


def landmarkIdOf(label: str) -> int:
    """The landmark ID of a control point label: its number (``"321"``, ``"L321"``, ``"321 apex"``;
    ``visceral.conventions.landmarks.landmark_id_of_label``)."""
    return landmark_id_of_label(label)


@dataclass
class MarkupsExport:
    """What a landmark export wrote, and what the user should know about it."""

    path: str
    count: int
    warnings: List[str] = field(default_factory=list)


def exportMarkups(markupsNode, referenceVolumeNode, path: str, overwrite: bool = False) -> MarkupsExport:
    """Write a point list as a landmark CSV in the seed's frame of the reference image's file grid.

    Positions are taken in world RAS (the point list's parent transforms applied), then brought into
    the reference volume's own frame (its parent transforms undone, as Slicer exports segmentations);
    covariances from the ``covariance`` measurement (RAS).

    Raises:
        VisceralError: no control points, a covariance partly NaN/infinite, a moved reference volume.
    """
    count = markupsNode.GetNumberOfControlPoints()
    if count == 0:
        raise VisceralError(f"the point list {markupsNode.GetName()!r} has no control points")
    labels = [markupsNode.GetNthControlPointLabel(n) for n in range(count)]
    ids = [landmarkIdOf(label) for label in labels]
    warnings = [f"control point {label!r} taken as landmark ID {i} (name points by their landmark ID)"
                for label, i in zip(labels, ids) if not re.fullmatch(r"L?\d+( .*)?", label.strip())]
    file_grid = checkFileGrid(referenceVolumeNode)
    world = np.array([markupsNode.GetNthControlPointPositionWorld(n) for n in range(count)], dtype=float).reshape(-1, 3)
    points, covariances = _worldToReference(world, markupsCovariances(markupsNode), referenceVolumeNode)
    inside = file_grid.contains_index(file_grid.world_to_index(points, "RAS"), 0.5)
    warnings += [f"control point {labels[n]!r} lies outside the reference image" for n in np.flatnonzero(~inside)]
    landmarks = export_landmarks(ids, points, "RAS", file_grid, covariances)
    write_landmarks(path, landmarks, overwrite=overwrite)
    return MarkupsExport(path, len(landmarks), warnings)


def importLandmarks(scene, path: str, referenceVolumeNode):
    """Load a landmark CSV as a point list on its reference image (labels = IDs, covariance measurement)."""
    ids, points, covariances = import_landmarks(read_landmarks(path), fileGeometry(referenceVolumeNode), "RAS")
    node = slicer.vtkMRMLMarkupsFiducialNode()
    node.SetName(Path(path).stem)
    scene.AddNode(node)
    for landmark_id, point in zip(ids, points):
        node.AddControlPoint(vtk.vtkVector3d(*point), str(landmark_id))
    if any(c is not None for c in covariances):
        setMarkupsCovariances(node, covariances)
    return node
