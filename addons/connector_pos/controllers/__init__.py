from . import closing, legacy, upload
