"""The job layer: records on disk, RQ queues, workers, the reaper and the service facade."""

from ..record import JobState
from .reaper import Reaper
from .redis_server import EmbeddedRedis, start_embedded_redis
from .service import JobService
from .store import JobNotFound, JobStore, UploadStore, UploadTooLarge
from .users import User, UserStore

__all__ = ["EmbeddedRedis", "JobNotFound", "JobService", "JobState", "JobStore", "Reaper",
           "UploadStore", "UploadTooLarge", "User", "UserStore", "start_embedded_redis"]
