"""The API's routes, one APIRouter per resource; api/app.py assembles them."""
