"""Images by URL without a server: canonical spelling and ids, states, which URLs a worker reads."""

from ris.files.changes import FileState
from ris.files.identity import has_image_extension, image_id, normalise_path
from ris.files.read_policy import refusal_reason
from ris.files.remote import (
    UNREACHABLE,
    describe_fetch_error,
    read_url_list,
    same_state,
    state_from_info,
)
from ris.settings import Settings


def test_a_url_is_its_own_canonical_identity_not_a_relative_path() -> None:
    spelled = "HTTPS://Photos.Example.COM:443/Cats/A.JPG#top"
    assert normalise_path(spelled) == "https://photos.example.com/Cats/A.JPG"
    assert image_id(spelled) == image_id("https://photos.example.com/Cats/A.JPG")
    assert image_id("https://photos.example.com/cats/a.jpg") != image_id(spelled)
    assert normalise_path("http://127.0.0.1:8080/x.png?v=2") == "http://127.0.0.1:8080/x.png?v=2"
    assert normalise_path("s3://bucket/key/a.jpg") == "s3://bucket/key/a.jpg"
    assert has_image_extension("https://h/a.JPG?size=large")
    assert not has_image_extension("https://h/image?id=3")


def test_a_list_of_urls_skips_blanks_and_comments() -> None:
    lines = ["# header\n", "\n", "  HTTP://H/a.jpg  \n", "s3://b/c.png"]
    assert list(read_url_list(lines)) == ["http://h/a.jpg", "s3://b/c.png"]


def test_an_object_changed_when_its_size_or_etag_or_else_mtime_did() -> None:
    indexed = FileState(10, 5, "abc")
    assert same_state(FileState(10, 9, "abc"), indexed)  # ETag wins over the time
    assert not same_state(FileState(10, 5, "abd"), indexed)
    assert not same_state(FileState(11, 5, "abc"), indexed)
    assert same_state(FileState(10, 5, ""), FileState(10, 5, ""))
    assert not same_state(FileState(10, 6, ""), FileState(10, 5, ""))
    assert not same_state(UNREACHABLE, UNREACHABLE)
    assert not same_state(FileState(10, 5, "abc"), None)


def test_states_from_s3_and_http_listings() -> None:
    http = {"size": 3, "ETag": '"xyz"', "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"}
    assert state_from_info(http) == FileState(3, 1445412480 * 10**9, "xyz")
    assert state_from_info({"name": "b/k"}) == FileState(-1, 0, "")


def test_fetch_failures_have_short_reasons() -> None:
    class Response(Exception):
        status = 503

    assert describe_fetch_error(FileNotFoundError("s3://b/k"), 30) == "not found (404)"
    assert describe_fetch_error(PermissionError(), 30) == "access denied (403)"
    assert describe_fetch_error(TimeoutError(), 7.5) == "timed out after 7.5 s"
    assert describe_fetch_error(Response(), 30) == "HTTP 503"


def test_allowed_roots_take_folders_and_url_prefixes(tmp_path) -> None:
    roots = Settings(allowed_roots=f"{tmp_path}:s3://Bucket/set:https://h/p/").allowed_root_list
    assert roots == [str(tmp_path.resolve()), "s3://bucket/set", "https://h/p/"]
    assert refusal_reason("s3://bucket/set/a.jpg", roots) is None
    assert refusal_reason("https://h/p/a.jpg", roots) is None
    assert refusal_reason(str(tmp_path / "a.jpg"), roots) is None
    outside = "outside the allowed roots (RIS_ALLOWED_ROOTS)"
    assert refusal_reason("s3://bucket/settings/a.jpg", roots) == outside
    assert refusal_reason("https://h/a.jpg", roots) == outside
    assert refusal_reason("/elsewhere/a.jpg", roots) == outside
    assert refusal_reason("ftp://h/a.jpg", []).startswith("unsupported URL scheme")
