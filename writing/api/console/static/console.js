// The console's entry (index.html loads it as a module, from a folder named by the hash of every asset):
// the admin key form, hash routing between the seven pages (each page builds itself the first time it is
// shown and loads its data every time it is shown), and a last-resort handler so that no error goes
// unseen. No build step: the browser follows the imports; every value shown is untrusted text, so the
// DOM is built with createElement and textContent only (dom.js), never innerHTML.
import { getKey, setKey } from "./api.js";
import { clearStatus, guard, showError, showStatus } from "./dom.js";
import { answersPage } from "./pages/answers.js";
import { auditPage } from "./pages/audit.js";
import { budgetPage } from "./pages/budget.js";
import { calibrationPage } from "./pages/calibration.js";
import { corpusPage } from "./pages/corpus.js";
import { feedbackPage } from "./pages/feedback.js";
import { playgroundPage } from "./pages/playground.js";
import { statsPage } from "./pages/stats.js";

// each page object is made when first shown: its build and state cost nothing until then
const PAGE_FACTORIES = {
  playground: playgroundPage,
  corpus: corpusPage,
  answers: answersPage,
  feedback: feedbackPage,
  stats: statsPage,
  calibration: calibrationPage,
  audit: auditPage,
  budget: budgetPage,
};
const PAGES = {};
function pageOf(name) {
  if (!PAGES[name]) PAGES[name] = PAGE_FACTORIES[name]();
  return PAGES[name];
}
const DEFAULT_PAGE = "playground";
const built = new Set();
let current = null;

function keyState() {
  const state = document.getElementById("key-state");
  state.textContent = getKey() ? "已设置（仅保存在本标签页的 sessionStorage）" : "未设置";
}

function setupKeyForm() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("admin-key");
  input.value = getKey();
  form.addEventListener(
    "submit",
    guard((ev) => {
      ev.preventDefault();
      setKey(input.value.trim());
      keyState();
      showStatus(getKey() ? "管理密钥已保存，之后的请求都会带上它。" : "管理密钥已清空。", "ok");
      if (current) show(current, true);
    })
  );
  document.getElementById("admin-key-clear").addEventListener(
    "click",
    guard(() => {
      input.value = "";
      setKey("");
      keyState();
      showStatus("管理密钥已清空。", "ok");
    })
  );
  keyState();
}

function pageFromHash() {
  const name = (window.location.hash || "").replace(/^#/, "").split("?")[0];
  return Object.prototype.hasOwnProperty.call(PAGE_FACTORIES, name) ? name : DEFAULT_PAGE;
}

async function show(name, reload) {
  const page = pageOf(name);
  const section = document.getElementById("page-" + name);
  if (current && current !== name) {
    const prev = PAGES[current];
    document.getElementById("page-" + current).hidden = true;
    if (prev.hide) prev.hide();
    clearStatus();
  }
  for (const a of document.querySelectorAll("#tabs a")) {
    a.classList.toggle("active", a.dataset.page === name);
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  section.hidden = false;
  const changed = current !== name;
  current = name;
  if (!built.has(name)) {
    page.build(section);
    built.add(name);
  }
  if (changed || reload) await page.show();
}

function route() {
  show(pageFromHash(), false).catch(showError);
}

window.addEventListener("unhandledrejection", (ev) => {
  ev.preventDefault();
  showError(ev.reason instanceof Error ? ev.reason : new Error(String(ev.reason)));
});

function start() {
  setupKeyForm();
  window.addEventListener("hashchange", route);
  if (!window.location.hash) history.replaceState(null, "", "#" + DEFAULT_PAGE);
  route();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
