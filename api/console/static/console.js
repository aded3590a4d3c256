// facegate console: every read and write goes through the /v1 API with the session cookie; a
// request that changes something carries X-Facegate-Console. Data is put on the page as text,
// never as HTML.
"use strict";

const HEADER = { "X-Facegate-Console": "1" };

function $(id) { return document.getElementById(id); }

function say(text, bad) {
  const s = $("status");
  s.textContent = text || "";
  s.className = bad ? "error" : "";
}

async function api(method, path, body) {
  const init = { method, headers: { ...HEADER }, credentials: "same-origin" };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 401) { window.location = "/login"; throw new Error("signed out"); }
  const text = await r.text();
  const data = text && r.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  if (!r.ok) {
    const message = data && data.error ? `${data.error.code}: ${data.error.message}` : `HTTP ${r.status}`;
    throw new Error(message);
  }
  return data;
}

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content ?? "";
  row.appendChild(td);
  return td;
}

function link(text, href) {
  const a = document.createElement("a");
  a.textContent = text;
  a.href = href;
  return a;
}

function button(text, onClick, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

function when(stamp) { return stamp ? new Date(stamp).toLocaleString() : ""; }

function guard(fn) {
  return async (...args) => {
    try { await fn(...args); } catch (e) { say(e.message, true); }
  };
}

// --- persons ---------------------------------------------------------------------------------

async function enrollmentsByPerson() {
  const jobs = await api("GET", "/v1/enrollments?status=succeeded&limit=500");
  const out = {};
  for (const j of jobs.items) if (j.person_id !== null && !(j.person_id in out)) out[j.person_id] = j.id;
  return out;
}

async function loadPersons() {
  const q = $("search").value.trim();
  const page = await api("GET", "/v1/persons?limit=200" + (q ? "&search=" + encodeURIComponent(q) : ""));
  const jobs = await enrollmentsByPerson();
  const body = $("persons").querySelector("tbody");
  body.replaceChildren();
  for (const p of page.items) {
    const tr = document.createElement("tr");
    tr.dataset.person = p.id;
    const job = jobs[p.id];
    if (job) {
      const img = document.createElement("img");
      img.src = `/v1/enrollments/${job}/samples.png`;
      img.alt = `GAN samples of ${p.display_name}`;
      img.className = "grid";
      cell(tr, img);
    } else cell(tr, "");
    cell(tr, p.display_name);
    cell(tr, p.external_id);
    cell(tr, String(p.samples));
    cell(tr, when(p.created_at));
    const actions = cell(tr, "");
    if (job) actions.appendChild(link("report", `/v1/enrollments/${job}/report.html`));
    actions.appendChild(button("Delete", guard(async () => {
      if (!confirm(`Delete ${p.display_name} and all their biometric data?`)) return;
      await api("DELETE", `/v1/persons/${p.id}`);
      say(`${p.display_name} deleted, with their samples, models and report faces`);
      await loadPersons();
    }), "danger"));
    body.appendChild(tr);
  }
  $("persons-total").textContent = `${page.total} person(s)`;
}

// --- enroll ----------------------------------------------------------------------------------

let recordedClip = null;

async function startCamera(videoId) {
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  const video = $(videoId);
  video.srcObject = stream;
  await video.play();
  return { stream, video };
}

async function recordClip() {
  const { stream } = await startCamera("preview");
  const recorder = new MediaRecorder(stream);
  const parts = [];
  recorder.ondataavailable = (e) => parts.push(e.data);
  const done = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start();
  const guide = ["look at the camera", "turn slowly to the left", "back to the middle",
                 "turn slowly to the right", "back to the middle"];
  for (let i = 0; i < 8; i++) {
    $("recorded").textContent = `recording: ${guide[Math.min(guide.length - 1, Math.floor(i / 1.6))]} (${8 - i} s)`;
    await new Promise((r) => setTimeout(r, 1000));
  }
  recorder.stop();
  await done;
  stream.getTracks().forEach((t) => t.stop());
  recordedClip = new Blob(parts, { type: recorder.mimeType || "video/webm" });
  $("recorded").textContent = `recorded ${(recordedClip.size / 1e6).toFixed(1)} MB`;
}

async function startEnrollment(event) {
  event.preventDefault();
  const form = new FormData();
  form.append("display_name", $("display-name").value);
  if ($("external-id").value.trim()) form.append("external_id", $("external-id").value.trim());
  const file = $("clip").files[0];
  if (file) form.append("video", file, file.name);
  else if (recordedClip) form.append("video", recordedClip, "webcam.webm");
  else throw new Error("choose a clip or record one first");
  $("start-enroll").disabled = true;
  say("uploading the clip");
  try {
    const job = await api("POST", "/v1/enrollments", form);
    follow(job);
  } finally {
    $("start-enroll").disabled = false;
  }
}

function follow(job) {
  $("job").hidden = false;
  $("job-name").textContent = job.display_name;
  $("job-error").textContent = "";
  $("job-done").hidden = true;
  say("the clip is in; the enrollment runs on the server");
  const events = new EventSource(`/v1/enrollments/${job.id}/events`);
  events.addEventListener("job", (e) => {
    const j = JSON.parse(e.data);
    $("progress").value = j.progress;
    $("percent").textContent = `${Math.round(j.progress * 100)}%`;
    $("stage").textContent = j.stage || j.status;
    if (j.status === "succeeded") {
      events.close();
      say(`${j.display_name} is enrolled (person ${j.person_id})`);
      $("job-grid").src = `/v1/enrollments/${j.id}/samples.png`;
      $("job-report").href = `/v1/enrollments/${j.id}/report.html`;
      $("job-done").hidden = false;
    } else if (j.status === "failed") {
      events.close();
      $("job-error").textContent = `${j.error_code}: ${j.error}`;
      say("the enrollment failed; the clip was not kept", true);
    }
  });
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) say("lost the job's progress; reload", true); };
}

// --- doors, policies, keys -------------------------------------------------------------------

function options(select, items, label, value) {
  select.replaceChildren();
  for (const it of items) {
    const o = document.createElement("option");
    o.textContent = label(it);
    o.value = value(it);
    select.appendChild(o);
  }
}

async function loadDoors() {
  const doors = await api("GET", "/v1/doors");
  const persons = (await api("GET", "/v1/persons?limit=500")).items;
  const names = Object.fromEntries(persons.map((p) => [p.id, p.display_name]));
  const body = $("doors").querySelector("tbody");
  body.replaceChildren();
  const policies = $("policies").querySelector("tbody");
  policies.replaceChildren();
  for (const d of doors) {
    const tr = document.createElement("tr");
    tr.dataset.door = d.name;
    cell(tr, d.name); cell(tr, String(d.required_level)); cell(tr, d.require_liveness ? "yes" : "no");
    cell(tr, d.webhook_url || "");
    cell(tr, button("Remove", guard(async () => {
      if (!confirm(`Remove door ${d.name} with its policies and keys?`)) return;
      await api("DELETE", `/v1/doors/${encodeURIComponent(d.name)}`);
      await loadDoors();
    }), "danger"));
    body.appendChild(tr);
    for (const p of await api("GET", `/v1/doors/${encodeURIComponent(d.name)}/policies`)) {
      const row = document.createElement("tr");
      cell(row, p.door); cell(row, p.person_id ? (names[p.person_id] || `person ${p.person_id}`) : `group ${p.group_id}`);
      cell(row, p.weekdays); cell(row, p.start || p.end ? `${p.start || ""}-${p.end || ""}` : "all day");
      cell(row, button("Remove", guard(async () => {
        await api("DELETE", `/v1/policies/${p.id}`);
        await loadDoors();
      }), "danger"));
      policies.appendChild(row);
    }
  }
  options($("policy-door"), doors, (d) => d.name, (d) => d.name);
  options($("key-door"), doors, (d) => d.name, (d) => d.name);
  options($("policy-person"), persons, (p) => p.display_name, (p) => p.id);
  const keys = await api("GET", "/v1/keys");
  const kb = $("keys").querySelector("tbody");
  kb.replaceChildren();
  for (const k of keys) {
    const tr = document.createElement("tr");
    tr.dataset.key = k.id;
    cell(tr, k.name); cell(tr, k.prefix); cell(tr, k.scope); cell(tr, k.door); cell(tr, when(k.last_used_at));
    cell(tr, k.revoked_at ? `revoked ${when(k.revoked_at)}` : button("Revoke", guard(async () => {
      if (!confirm(`Revoke key ${k.name}?`)) return;
      await api("DELETE", `/v1/keys/${k.id}`);
      await loadDoors();
    }), "danger"));
    kb.appendChild(tr);
  }
}

async function addDoor(event) {
  event.preventDefault();
  await api("POST", "/v1/doors", {
    name: $("door-name").value.trim(),
    required_level: Number($("door-level").value),
    require_liveness: $("door-liveness").checked,
  });
  say(`door ${$("door-name").value.trim()} added`);
  $("door-form").reset();
  await loadDoors();
}

async function addPolicy(event) {
  event.preventDefault();
  const door = $("policy-door").value;
  await api("POST", `/v1/doors/${encodeURIComponent(door)}/policies`, { person_id: Number($("policy-person").value) });
  say(`${$("policy-person").selectedOptions[0].textContent} may pass ${door}`);
  await loadDoors();
}

async function addKey(event) {
  event.preventDefault();
  const scope = $("key-scope").value;
  const made = await api("POST", "/v1/keys", {
    name: $("key-name").value.trim(), scope, door: scope === "door" ? $("key-door").value : null,
  });
  $("new-key").textContent = made.key;
  $("new-key-box").hidden = false;
  say(`key ${made.name} created; copy it now, it is not shown again`);
  $("key-name").value = "";
  await loadDoors();
}

// --- the access log --------------------------------------------------------------------------

let logTimer = null;

async function loadLog() {
  const params = new URLSearchParams({ limit: "100" });
  if ($("filter-door").value.trim()) params.set("door", $("filter-door").value.trim());
  if ($("filter-decision").value) params.set("decision", $("filter-decision").value);
  const page = await api("GET", "/v1/events?" + params);
  const body = $("events").querySelector("tbody");
  body.replaceChildren();
  for (const e of page.items) {
    const tr = document.createElement("tr");
    tr.dataset.event = e.id;
    tr.className = "decision-" + e.decision;
    cell(tr, when(e.created_at)); cell(tr, e.door); cell(tr, e.decision);
    cell(tr, e.person_id ? `person ${e.person_id}` : (e.biometrics_erased ? "erased" : ""));
    cell(tr, e.level ?? ""); cell(tr, e.probability == null ? "" : e.probability.toFixed(4));
    cell(tr, link("report", `/v1/events/${e.id}/report.html`));
    body.appendChild(tr);
  }
  $("events-total").textContent = `${page.total} event(s)`;
}

function liveLog() {
  clearInterval(logTimer);
  if ($("live").checked) logTimer = setInterval(guard(loadLog), 2000);
}

// --- try the door ----------------------------------------------------------------------------

let cameraFrame = null;

async function useCamera() {
  const { stream, video } = await startCamera("try-preview");
  await new Promise((r) => setTimeout(r, 800));
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  stream.getTracks().forEach((t) => t.stop());
  cameraFrame = await new Promise((r) => canvas.toBlob(r, "image/jpeg", 0.92));
  say("frame taken; ask the door");
}

async function tryDoor(event) {
  event.preventDefault();
  const door = $("try-door").value;
  const form = new FormData();
  const photo = $("try-photo").files[0];
  if (photo) form.append("images", photo, photo.name);
  else if (cameraFrame) form.append("images", cameraFrame, "camera.jpg");
  else throw new Error("choose a photo or use the camera first");
  const a = await api("POST", `/v1/doors/${encodeURIComponent(door)}/access`, form);
  $("answer").hidden = false;
  $("answer-decision").textContent = a.decision + (a.person ? ` (${a.person.display_name})` : "");
  $("answer-reason").textContent = a.reason;
  $("answer-level").textContent = a.level ?? "-";
  $("answer-required").textContent = a.required_level;
  $("answer-probability").textContent = a.probability == null ? "-" : a.probability.toFixed(4);
  $("answer-report").href = a.report_html_url;
  say(`event ${a.event_id} recorded`);
}

// --- evaluation ------------------------------------------------------------------------------

async function loadEvaluation() {
  try {
    const t = await api("GET", "/v1/levels");
    $("levels-source").textContent = `calibrated ${when(t.created_at)} on ${t.impostor_trials} impostor trials (${t.source})`;
    const body = $("levels").querySelector("tbody");
    for (const r of t.rows) {
      const tr = document.createElement("tr");
      cell(tr, String(r.level)); cell(tr, r.target_fmr.toExponential(0)); cell(tr, r.threshold.toFixed(3));
      cell(tr, r.estimated_fmr.toExponential(2)); cell(tr, r.basis);
      body.appendChild(tr);
    }
  } catch (e) { $("levels-source").textContent = e.message; }
  try {
    const ev = await api("GET", "/v1/evaluation");
    $("eval-when").textContent = `run ${when(ev.created_at)}` + (ev.seconds ? `, ${Math.round(ev.seconds)} s` : "");
    $("eval-summary").textContent = ev.summary_markdown;
    $("det").src = ev.det_url;
    $("det").hidden = false;
  } catch (e) { $("eval-when").textContent = e.message; }
}

// --- start -----------------------------------------------------------------------------------

const START = {
  persons: () => {
    $("person-search").addEventListener("submit", guard(async (e) => { e.preventDefault(); await loadPersons(); }));
    return loadPersons();
  },
  enroll: () => {
    $("enroll").addEventListener("submit", guard(startEnrollment));
    $("record").addEventListener("click", guard(recordClip));
  },
  doors: () => {
    $("door-form").addEventListener("submit", guard(addDoor));
    $("policy-form").addEventListener("submit", guard(addPolicy));
    $("key-form").addEventListener("submit", guard(addKey));
    return loadDoors();
  },
  log: () => {
    $("log-filter").addEventListener("submit", guard(async (e) => { e.preventDefault(); await loadLog(); }));
    $("live").addEventListener("change", liveLog);
    liveLog();
    return loadLog();
  },
  try: async () => {
    $("try").addEventListener("submit", guard(tryDoor));
    $("try-camera").addEventListener("click", guard(useCamera));
    options($("try-door"), await api("GET", "/v1/doors"), (d) => d.name, (d) => d.name);
  },
  evaluation: loadEvaluation,
};

document.addEventListener("DOMContentLoaded", guard(async () => {
  const start = START[document.body.dataset.page];
  if (start) await start();
  document.body.dataset.ready = "1";
}));
