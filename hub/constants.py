"""Wire constants of the CEB standard and the DXP envelope, under their spec names."""

from pathlib import Path

CEB_NS = "http://www.chinaport.gov.cn/ceb"  # business messages (prefix ceb)
DXP_NS = "http://www.chinaport.gov.cn/dxp"  # transport envelope (prefix dxp)
DS_NS = "http://www.w3.org/2000/09/xmldsig#"  # XML-DSig
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

NSMAP_CEB = {"ceb": CEB_NS}
NSMAP_DXP = {"dxp": DXP_NS}

SCHEMA_SET_ID = "ceb-import:202205"  # recorded on every stored message
DXP_SCHEMA_SET_ID = "dxp:202205"

IMPORT_DXP_ID = "DXPEDCCEB0000002"  # the customs CBEC import system's DXP id
DXP_MODE = "DXP"
CURRENCY_CNY = "142"

MAX_RECORDS_PER_MESSAGE = 100  # spec §1.1: up to 100 business entities per declaration
MAX_LINES_PER_RECORD = 99  # spec §1.1: a head carries 1..99 body lines

APP_TYPE_NEW = "1"
APP_TYPE_CHANGE = "2"
APP_TYPE_DELETE = "3"
APP_STATUS_TEMPORARY = "1"
APP_STATUS_DECLARE = "2"

XSD_DIR = Path(__file__).resolve().parent.parent / "xsd"


def ceb(tag: str) -> str:
    """Clark name of a CEB element."""
    return f"{{{CEB_NS}}}{tag}"


def dxp(tag: str) -> str:
    """Clark name of a DXP element."""
    return f"{{{DXP_NS}}}{tag}"
