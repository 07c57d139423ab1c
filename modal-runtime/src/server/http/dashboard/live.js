// The live parts of an app page: the tables refresh from `data-live` and
// the log tail follows `data-logs`, both server-sent events whose data is
// markup the control plane rendered (and escaped).
(() => {
  const body = document.body;
  const MAX_LOG_LINES = 1000;
  const signIn = () => location.assign(body.dataset.signIn);
  const state = document.getElementById("live-state");
  const say = (text) => { if (state) state.textContent = " · " + text; };

  if (body.dataset.live) {
    const tables = new EventSource(body.dataset.live);
    let refreshes = 0;
    for (const name of ["functions", "containers", "calls"]) {
      tables.addEventListener(name, (e) => {
        const rows = document.getElementById(name + "-rows");
        if (rows) rows.innerHTML = e.data;
      });
    }
    tables.addEventListener("refreshed", (e) => {
      refreshes += 1;
      body.dataset.refreshes = String(refreshes);
      say("live, updated " + e.data);
    });
    tables.addEventListener("gone", () => { tables.close(); say("the app is gone"); });
    tables.addEventListener("signed-out", () => { tables.close(); signIn(); });
    tables.onerror = () =>
      say(tables.readyState === EventSource.CLOSED ? "disconnected: reload the page" : "reconnecting…");
  }

  const box = document.getElementById("logs");
  if (body.dataset.logs && box) {
    const logs = new EventSource(body.dataset.logs);
    logs.addEventListener("reset", () => box.replaceChildren());
    logs.addEventListener("line", (e) => {
      const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      box.insertAdjacentHTML("beforeend", e.data);
      while (box.childElementCount > MAX_LOG_LINES) box.firstElementChild.remove();
      if (atEnd) box.scrollTop = box.scrollHeight;
    });
    logs.addEventListener("end", () => logs.close());
    logs.addEventListener("signed-out", () => { logs.close(); signIn(); });
  }
})();
