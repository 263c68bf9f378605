/* govgis web map — talking to the API: the department key, retries with back-off on 429/503, and
   problems (RFC 7807) said in the UI language next to what caused them.

   A department key has a per-minute budget (GOVGIS_RATE_LIMIT_PER_MINUTE), shared by every request
   made with it. A 429 or 503 is not an answer but a "not now": the request is sent again after the
   server's Retry-After (or 1, 2, 4 … s), and meanwhile every other keyed request waits too, so the map
   does not keep spending a budget that is already used up. */
(function () {
  "use strict";
  var G = (window.GovGis = window.GovGis || {});
  var KEY_STORAGE = "govgis.apiKey";
  var RETRY_STATUSES = [429, 503];
  G.KEY_STORAGE = KEY_STORAGE;
  G.net = { blockedUntil: 0, maxRetries: 6 };
  G.metrics = G.metrics || {};
  G.metrics.requests = [];  // {at, path, status, keyed}: what the map asked the server for
  G.metrics.retries = 0;

  G.apiKey = function () { return sessionStorage.getItem(KEY_STORAGE) || ""; };
  G.headers = function (extra, anonymous) {
    var h = Object.assign({}, extra || {});
    var key = G.apiKey();
    if (key && !anonymous) h["X-API-Key"] = key;
    return h;
  };
  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }
  function retryDelay(response, attempt) {
    var after = Number(response && response.headers.get("retry-after"));
    var base = isFinite(after) && after > 0 ? Math.min(after, 65) * 1000 : Math.min(30000, 1000 * Math.pow(2, attempt));
    return base + Math.floor(Math.random() * 400);  // jitter: tiles that were refused together do not return together
  }
  function slugOf(body) {
    var type = body && typeof body === "object" && body.type;
    return type ? String(type).split("/").pop() : "";
  }

  /* A failed request: status, the problem+json body, its type slug, the server's detail. */
  function Problem(status, body) {
    var detail = body && typeof body === "object" ? (body.detail || body.title || "") : (typeof body === "string" ? body.slice(0, 300) : "");
    var err = new Error(detail || ("HTTP " + status));
    err.status = status; err.body = body; err.slug = slugOf(body) || (status ? "http-" + status : "network"); err.detail = detail;
    return err;
  }
  G.Problem = Problem;

  /* What to tell a person about a failed request, in the UI language; the server's text is secondary. */
  G.problemText = function (err) {
    var slug = (err && err.slug) || "network";
    var key = "problem_" + slug.replace(/-/g, "_");
    var text = G.t(key);
    if (text === key) {
      var byStatus = "problem_http_" + (err && err.status);
      text = G.t(byStatus) !== byStatus ? G.t(byStatus) : G.t("problem_default", { status: (err && err.status) || "?" });
    }
    return { message: text, detail: (err && err.detail) || "" };
  };

  /* Show a problem next to the element that caused it (a button, a form, a layer row), and in the status line. */
  G.showProblem = function (where, err, context) {
    var p = G.problemText(err);
    var headline = (context ? context + "：" : "") + p.message;
    if (G.lang === "en" && context) headline = context + ": " + p.message;
    G.message(headline, true, p.detail);
    var anchor = typeof where === "string" ? document.querySelector(where) : where;
    if (!anchor) return null;
    G.clearProblem(anchor);
    var box = G.el("div", { class: "gg-problem", role: "alert", "data-problem": err && err.slug || "" },
      [G.el("strong", { text: headline })]);
    if (p.detail && p.detail !== p.message) box.appendChild(G.el("small", { class: "gg-problem-detail", text: p.detail }));
    anchor.insertAdjacentElement(anchor.tagName === "DIV" || anchor.tagName === "SECTION" || anchor.tagName === "FORM" ? "beforeend" : "afterend", box);
    return box;
  };
  G.clearProblem = function (anchor) {
    anchor = typeof anchor === "string" ? document.querySelector(anchor) : anchor;
    if (!anchor) return;
    var scope = anchor.tagName === "DIV" || anchor.tagName === "SECTION" || anchor.tagName === "FORM" ? anchor : anchor.parentNode;
    if (!scope) return;
    Array.prototype.slice.call(scope.children).forEach(function (n) {
      if (n.classList.contains("gg-problem") || n.classList.contains("gg-notice")) n.remove();
    });
  };
  function showRetry(options, status, wait, attempt) {
    var text = G.t("retrying", { status: status, s: Math.ceil(wait / 1000), n: attempt });
    if (options.onRetry) options.onRetry(text, status, wait, attempt);
    var anchor = typeof options.where === "string" ? document.querySelector(options.where) : options.where;
    if (anchor) {
      G.clearProblem(anchor);
      var box = G.el("div", { class: "gg-notice", role: "status", "data-retry": String(status), text: (options.context ? options.context + "：" : "") + text });
      anchor.insertAdjacentElement(anchor.tagName === "DIV" || anchor.tagName === "SECTION" || anchor.tagName === "FORM" ? "beforeend" : "afterend", box);
    } else if (!options.quiet) {
      G.message((options.context ? options.context + "：" : "") + text, false);
    }
  }

  /* fetch with the key, retries on 429/503 and a parsed body.
     options: json (a body to POST), method, headers, binary (→ ArrayBuffer), anonymous (no key),
     where (element to show problems next to), context (what was being done, for the message),
     quiet (no status-line message while retrying), signal, cache, retries. */
  G.api = function (path, options) {
    options = options || {};
    var attempt = 0;
    var max = options.retries !== undefined ? options.retries : G.net.maxRetries;
    var keyed = !options.anonymous && Boolean(G.apiKey());
    function once() {
      var gate = keyed ? Math.max(0, G.net.blockedUntil - Date.now()) : 0;
      return (gate ? sleep(gate) : Promise.resolve()).then(function () {
        if (options.signal && options.signal.aborted) throw Object.assign(new Error("aborted"), { name: "AbortError" });
        var init = { method: options.method || (options.json !== undefined || options.body ? "POST" : "GET"),
          headers: G.headers(options.headers, options.anonymous), signal: options.signal, cache: options.cache || "default" };
        if (options.json !== undefined) { init.body = JSON.stringify(options.json); init.headers["Content-Type"] = "application/json"; }
        else if (options.body) init.body = options.body;
        var entry = { at: Date.now(), path: path, status: 0, keyed: Boolean(init.headers["X-API-Key"]) };
        G.metrics.requests.push(entry);
        return fetch(path, init).then(function (response) {
          entry.status = response.status;
          if (RETRY_STATUSES.indexOf(response.status) >= 0 && attempt < max) {
            var wait = retryDelay(response, attempt);
            attempt++; G.metrics.retries++;
            if (keyed && response.status === 429) G.net.blockedUntil = Math.max(G.net.blockedUntil, Date.now() + wait);
            showRetry(options, response.status, wait, attempt);
            return sleep(wait).then(once);
          }
          if (options.binary && response.ok) return response.arrayBuffer();
          var type = response.headers.get("content-type") || "";
          var body = type.indexOf("json") >= 0 ? response.json().catch(function () { return null; }) : response.text();
          return body.then(function (b) {
            if (!response.ok) throw Problem(response.status, b);
            return b;
          });
        }, function (networkError) {
          if (networkError && networkError.name === "AbortError") throw networkError;
          if (attempt < Math.min(max, 3)) {
            var wait = retryDelay(null, attempt);
            attempt++; G.metrics.retries++;
            showRetry(options, "—", wait, attempt);
            return sleep(wait).then(once);
          }
          throw Problem(0, { type: "network", detail: String(networkError && networkError.message || networkError) });
        });
      });
    }
    return once().then(function (body) {
      if (options.where) G.clearProblem(options.where);
      return body;
    }, function (err) {
      if (err && err.name === "AbortError") throw err;
      if (options.where !== false && !options.silent) G.showProblem(options.where, err, options.context);
      throw err;
    });
  };

  /* requests per clock minute so far (the figure the five-minute session reports) */
  G.requestsPerMinute = function (keyedOnly) {
    var out = {};
    G.metrics.requests.forEach(function (r) {
      if (keyedOnly && !r.keyed) return;
      var minute = Math.floor(r.at / 60000);
      out[minute] = (out[minute] || 0) + 1;
    });
    return out;
  };
})();
