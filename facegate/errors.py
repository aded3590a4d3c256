"""The project's own exceptions: each carries a stable `code` and a message an administrator can act on."""


class FacegateError(Exception):
    """Base of every error facegate raises on purpose. `code` is stable (the API will return it)."""

    code = "facegate_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConfigurationError(FacegateError):
    """A setting is missing or points at something unusable."""

    code = "configuration_error"


class ModelFileError(ConfigurationError):
    """A model's weights file is missing, unreadable or not the expected model."""

    code = "model_file_error"


class NotBuiltYetError(FacegateError):
    """A stage of the product that a later issue delivers; says which."""

    code = "not_built_yet"


# --- sources: files, cameras, streams, photo folders ---------------------------------------


class SourceError(FacegateError):
    """The enrollment source cannot be read."""

    code = "source_error"


class SourceNotFoundError(SourceError):
    code = "source_not_found"


class EmptyFileError(SourceError):
    code = "empty_file"


class NotAVideoError(SourceError):
    code = "not_a_video"


class TruncatedVideoError(SourceError):
    code = "truncated_video"


class CameraUnavailableError(SourceError):
    code = "camera_unavailable"


class ImageDecodeError(SourceError):
    code = "image_decode_error"


# --- enrollment: the source was read, but it cannot enroll a person -------------------------


class EnrollmentError(FacegateError):
    """The clip or photos were read but do not make a safe enrollment."""

    code = "enrollment_refused"


class ClipTooShortError(EnrollmentError):
    code = "clip_too_short"


class NoFaceError(EnrollmentError):
    code = "no_face"


class MultiplePeopleError(EnrollmentError):
    code = "multiple_people"


class PoorQualityError(EnrollmentError):
    code = "poor_quality"


class InsufficientHeadTurnError(EnrollmentError):
    code = "insufficient_head_turn"


class NoUsablePhotoError(EnrollmentError):
    code = "no_usable_photo"


class TooFewFacesForModelsError(EnrollmentError):
    code = "too_few_faces_for_models"
