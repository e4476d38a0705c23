"""The endpoints' adapters (api/pipeline.py runs every request through one of them), by the path they serve."""

from api.endpoints.chat import CHAT
from api.endpoints.embeddings import EMBEDDINGS
from api.endpoints.messages import MESSAGES
from api.endpoints.responses import RESPONSES
from api.pipeline import Endpoint

ENDPOINTS: tuple[Endpoint, ...] = (CHAT, EMBEDDINGS, RESPONSES, MESSAGES)
ENDPOINTS_BY_PATH: dict[str, Endpoint] = {endpoint.path: endpoint for endpoint in ENDPOINTS}
