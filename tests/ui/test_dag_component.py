"""The DAG component: the macro's SVG (render tests, no server) and dag.js in a real
Chromium on the live `cyclone up` (fit, zoom, search, keyboard, live updates)."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
from support.live_up import LiveUp
from support.ui import browser_sign_in, new_tenant, screenshot

from cyclone.ui.dag_view import NodeInfo
from cyclone.ui.layout import layout_dag
from cyclone.ui.templating import environment

DIAMOND = (["version", "build-linux", "build-mac", "report"],
           [("version", "build-linux"), ("version", "build-mac"),
            ("build-linux", "report"), ("build-mac", "report")])


def render(names: list[str], edges: list[tuple[str, str]], info: dict | None = None,
           **options: Any) -> str:
    template = environment().from_string(
        '{% from "components/dag.html" import dag %}{{ dag(layout, info, **options) }}')
    return template.render(layout=layout_dag(names, edges), info=info or {}, options=options)


def node_tags(text: str) -> list[str]:
    return re.findall(r'<g class="dag-node[ "][^>]*>', text)


def test_an_empty_graph_renders_an_empty_svg() -> None:
    text = render([], [])
    assert "<svg" in text and node_tags(text) == [] and 'class="dag-edge"' not in text


def test_every_node_carries_its_stage_and_phase_and_every_edge_its_ends() -> None:
    info = {"version": NodeInfo("Succeeded", "4.2s"), "build-linux": NodeInfo("Running", "1m2s"),
            "build-mac": {"phase": "Failed", "duration": "3s"}}
    text = render(*DIAMOND, info, id="run-dag")
    tags = node_tags(text)
    assert len(tags) == 4
    phases = dict(re.findall(r'data-stage="([^"]+)" data-phase="([^"]+)"', text))
    assert phases == {"version": "Succeeded", "build-linux": "Running", "build-mac": "Failed",
                      "report": "Pending"}
    assert all('tabindex="0"' in tag and 'role="button"' in tag for tag in tags)
    assert 'class="dag-duration" dx="6">1m2s</tspan>' in text
    edges = set(re.findall(r'data-from="([^"]+)" data-to="([^"]+)"', text))
    assert edges == set(DIAMOND[1])
    assert 'id="run-dag"' in text and 'marker-end="url(#run-dag-arrow)"' in text


def test_critical_path_regressions_links_and_problems_are_marked() -> None:
    text = render(*DIAMOND, {"report": NodeInfo("Succeeded", "9s")},
                  critical=("version", "build-mac", "report"),
                  flagged={"report": "2.3x slower than median"},
                  href=lambda name: f"/stages/{name}", invalid={"build-linux": "bad image"})
    assert '<g class="dag-node critical regression"\n         data-stage="report"' in text
    assert '<g class="dag-node invalid"\n         data-stage="build-linux"' in text
    critical = re.findall(r'<path class="dag-edge critical"\s+data-from="([^"]+)" '
                          r'data-to="([^"]+)"', text)
    assert sorted(critical) == [("build-mac", "report"), ("version", "build-mac")]
    assert "· 2.3x slower than median</title>" in text
    assert 'data-href="/stages/version"' in text and '<a href="/stages/version"' in text


def test_a_spec_graph_shows_notes_not_phases_and_editable_handles() -> None:
    text = render(*DIAMOND, notes={"report": "new"}, editable=True)
    assert '<tspan class="dag-note">new</tspan>' in text
    assert ">Pending<" not in text
    assert text.count("data-dag-handle") == 4


def test_stage_names_stay_text() -> None:
    name = '<img src=x onerror="alert(1)">'
    text = render([name, "b"], [(name, "b")], {name: NodeInfo("Failed", "<b>1s</b>")},
                  href=lambda n: "/s/" + n, flagged={name: "<script>"})
    assert "<img" not in text and "<b>" not in text and "<script>" not in text
    assert html.escape(name, quote=True) in text or "&lt;img src=x" in text


def test_two_thousand_stages_render() -> None:
    names = [f"s{i:04d}" for i in range(2000)]
    edges = [(names[i // 3], names[i]) for i in range(1, 2000)]
    text = render(names, edges, {n: NodeInfo("Succeeded", "1s") for n in names})
    assert len(node_tags(text)) == 2000 and text.count('<path class="dag-edge') == 1999


# ---- in Chromium, on the live instance -------------------------------------------------

PROJECT = "dagcomp"


def make_diamond(api: httpx.Client, project: str) -> str:
    """The diamond workflow (its Stages alpine echo steps) in `project`; its name."""
    response = api.post("/apis/v1alpha1/projects", json={"metadata": {"name": project}})
    assert response.status_code == 201, response.text
    names, edges = DIAMOND
    for name in names:
        response = api.post(f"/apis/v1alpha1/projects/{project}/stages", json={
            "metadata": {"name": name},
            "spec": {"pod": {"spec": {"containers": [
                {"image": "alpine:3.20", "command": ["sh", "-c", f"echo {name}"]}]}}}})
        assert response.status_code == 201, response.text
    stages = [{"name": n, **({"depends": [a for a, b in edges if b == n]}
                             if any(b == n for _, b in edges) else {})} for n in names]
    response = api.post(f"/apis/v1alpha1/projects/{project}/workflows", json={
        "metadata": {"name": "diamond"}, "spec": {"stages": stages}})
    assert response.status_code == 201, response.text
    return "diamond"


@pytest.fixture(scope="module")
def diamond_tenant(ui_up: LiveUp, admin_api: httpx.Client) -> str:
    """A tenant of this module holding the diamond workflow; its token."""
    _, token = new_tenant(admin_api, "dag")
    with httpx.Client(base_url=ui_up.url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as api:
        make_diamond(api, PROJECT)
    return token


@pytest.fixture
def dag_page(context: Any, ui_up: LiveUp, diamond_tenant: str) -> Any:
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    browser_sign_in(page, ui_up.url, diamond_tenant)
    page.goto(f"{ui_up.url}/projects/{PROJECT}/workflows/diamond/edit")
    page.wait_for_function("() => window.CycloneDag && document.querySelector('svg.dag-svg')"
                           "._dag")
    return page


def view_box(page: Any) -> list[float]:
    return [float(v) for v in page.get_attribute("svg.dag-svg", "viewBox").split()]


def test_the_diamond_renders_inside_its_fitted_view_in_light_and_dark(dag_page: Any) -> None:
    page = dag_page
    nodes = page.locator("svg.dag-svg .dag-node")
    assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.stage)")) == sorted(DIAMOND[0])
    assert page.locator("svg.dag-svg .dag-edge").count() == 4
    frame = page.locator("svg.dag-svg").bounding_box()
    for index in range(4):
        box = nodes.nth(index).bounding_box()
        assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"]
        assert frame["y"] <= box["y"] and box["y"] + box["height"] <= frame["y"] + frame["height"]
    linux = page.locator('[data-stage="build-linux"]').bounding_box()
    report = page.locator('[data-stage="report"]').bounding_box()
    assert linux["x"] < report["x"], "stages flow left to right"
    shown = page.evaluate("""() => { const svg = document.querySelector('svg.dag-svg');
        return svg.getBoundingClientRect().width / svg.viewBox.baseVal.width; }""")
    assert shown <= 1.001, "a small DAG is shown at its own size, not blown up"
    screenshot(page, "dag-diamond")
    bar = page.locator('[data-stage="version"] .dag-bar')
    light = bar.evaluate("el => getComputedStyle(el).fill")
    page.click("[data-theme-toggle]")
    page.click("[data-theme-toggle]")
    assert page.locator("html").get_attribute("data-theme") == "dark"
    dark = bar.evaluate("el => getComputedStyle(el).fill")
    assert dark != light, "phase colours follow the theme"
    screenshot(page, "dag-diamond-dark")
    assert page.errors == []


def test_zoom_buttons_wheel_and_fit_change_the_view(dag_page: Any) -> None:
    page = dag_page
    fitted = view_box(page)
    page.click("[data-dag-zoom=in]")
    zoomed = view_box(page)
    assert zoomed[2] == pytest.approx(fitted[2] / 1.25, rel=0.01)
    page.click("[data-dag-zoom=out]")
    page.click("[data-dag-zoom=out]")
    assert view_box(page)[2] > fitted[2]
    box = page.locator("svg.dag-svg").bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    before = view_box(page)
    page.mouse.wheel(0, -200)
    page.wait_for_function(f"() => document.querySelector('svg.dag-svg').viewBox.baseVal.width"
                           f" < {before[2] - 1}")
    before = view_box(page)
    page.mouse.move(box["x"] + 200, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + 260, box["y"] + 90, steps=5)
    page.mouse.up()
    panned = view_box(page)
    assert panned[0] < before[0] and panned[1] < before[1], "dragging right/down pans"
    assert panned[2] == pytest.approx(before[2])
    assert page.url.endswith("/edit"), "the drag did not also click a stage"
    page.click("[data-dag-fit]")
    assert view_box(page) == pytest.approx(fitted, abs=0.5)
    assert page.errors == []


def test_search_highlights_selects_and_centres_a_stage(dag_page: Any) -> None:
    page = dag_page
    page.click("[data-dag-zoom=in]")
    page.click("[data-dag-zoom=in]")
    page.fill("[data-dag-search]", "MAC")
    mac = page.locator('[data-stage="build-mac"]')
    assert "match" in mac.get_attribute("class") and "selected" in mac.get_attribute("class")
    assert page.locator("svg.dag-svg.searching").count() == 1
    assert page.locator("[data-dag-count]").inner_text() == "1 of 1"
    frame = page.locator("svg.dag-svg").bounding_box()
    box = mac.locator(".dag-box").bounding_box()
    assert abs((box["x"] + box["width"] / 2) - (frame["x"] + frame["width"] / 2)) < 3
    assert abs((box["y"] + box["height"] / 2) - (frame["y"] + frame["height"] / 2)) < 3
    page.fill("[data-dag-search]", "build")
    assert page.locator(".dag-node.match").count() == 2
    page.press("[data-dag-search]", "Enter")
    assert page.locator("[data-dag-count]").inner_text() == "2 of 2"
    page.fill("[data-dag-search]", "nothing-like-it")
    assert page.locator("[data-dag-count]").inner_text() == "no stage matches"
    page.press("[data-dag-search]", "Escape")
    assert page.locator("svg.dag-svg.searching").count() == 0
    assert page.errors == []


def test_arrow_keys_move_the_selection_and_enter_chooses_the_stage(dag_page: Any) -> None:
    page = dag_page

    def selected() -> str:
        return page.evaluate("() => document.activeElement.dataset.stage + '|' + "
                             "[...document.querySelectorAll('.dag-node.selected')]"
                             ".map(e => e.dataset.stage).join()")

    page.focus('[data-stage="version"]')
    page.keyboard.press("ArrowRight")
    first = selected()
    assert first in ("build-linux|build-linux", "build-mac|build-mac")
    page.keyboard.press("ArrowDown" if first.startswith("build-linux") else "ArrowUp")
    assert selected() in ("build-mac|build-mac", "build-linux|build-linux")
    assert selected() != first
    page.keyboard.press("ArrowRight")
    assert selected() == "report|report"
    page.keyboard.press("ArrowRight")
    assert selected() == "report|report", "nothing runs after report"
    page.keyboard.press("ArrowLeft")
    assert selected().split("|")[0] in ("build-linux", "build-mac")
    page.keyboard.press("ArrowLeft")
    assert selected() == "version|version"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#editor-stage-title").inner_text() == "Stage version", \
        "Enter chose the stage: the editor opened its form"
    assert page.errors == []


def test_live_updates_change_only_the_nodes_given(dag_page: Any) -> None:
    page = dag_page
    before = page.evaluate("() => document.querySelector('[data-stage=version]').outerHTML")
    changed = page.evaluate("""() => window.CycloneDag.update(
        document.querySelector('svg.dag-svg'),
        {report: {phase: 'Running', duration: '3.0s'}, ghost: {phase: 'Failed'}})""")
    assert changed == 1
    report = page.locator('[data-stage="report"]')
    assert report.get_attribute("data-phase") == "Running"
    assert report.locator(".dag-duration").text_content() == "3.0s"
    assert report.locator(".dag-phase").text_content() == "Running"
    assert report.get_attribute("aria-label") == "report: Running, 3.0s"
    assert page.evaluate("() => document.querySelector('[data-stage=version]').outerHTML") \
        == before
    assert page.errors == []


def test_two_graphs_on_one_page_keep_their_own_view(dag_page: Any) -> None:
    page = dag_page
    page.evaluate("""() => {
        const first = document.querySelector('[data-dag]');
        const copy = first.cloneNode(true);
        copy._dagReady = false;
        copy.querySelector('svg').id = 'second-dag';
        first.parentNode.appendChild(copy);
        window.CycloneDag.init(first.parentNode);
    }""")
    first, second = page.locator("[data-dag]").nth(0), page.locator("[data-dag]").nth(1)
    page.wait_for_function("() => document.getElementById('second-dag')._dag")
    width = float(first.locator("svg").get_attribute("viewBox").split()[2])
    second.locator("[data-dag-zoom=in]").click()
    assert float(first.locator("svg").get_attribute("viewBox").split()[2]) == width
    assert float(second.locator("svg").get_attribute("viewBox").split()[2]) < width
    second.locator("[data-dag-search]").fill("report")
    assert first.locator(".dag-node.match").count() == 0
    assert second.locator(".dag-node.match").count() == 1
    assert page.errors == []
