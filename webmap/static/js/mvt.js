/* govgis web map — a Mapbox Vector Tile (MVT 2.1) decoder: ArrayBuffer → {layerName: {extent, features}}.
   The map fetches its tiles itself (one request for every visible layer, kept in memory, retried on
   429/503), so it decodes them itself too; the shape is what Leaflet.VectorGrid's symbolizers read:
   feature = {id, type (1 point, 2 line, 3 polygon), properties, geometry: [[{x, y}, …], …]}. */
(function () {
  "use strict";
  var G = (window.GovGis = window.GovGis || {});
  var utf8 = new TextDecoder("utf-8");

  function Reader(buffer) {
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.pos = 0;
  }
  Reader.prototype.varint = function () {
    // up to 64 bits; doubles keep integers exact to 2^53, which feature ids and counts never reach
    var value = 0, scale = 1, b;
    do {
      if (this.pos >= this.bytes.length) throw new Error("truncated vector tile");
      b = this.bytes[this.pos++];
      value += (b & 0x7f) * scale;
      scale *= 128;
    } while (b & 0x80);
    return value;
  };
  Reader.prototype.skip = function (wireType) {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) { var n = this.varint(); this.pos += n; }
    else if (wireType === 5) this.pos += 4;
    else throw new Error("unknown protobuf wire type " + wireType);
  };
  Reader.prototype.sub = function () {
    var n = this.varint(), start = this.pos;
    this.pos += n;
    return new Reader(this.bytes.subarray(start, start + n));
  };
  Reader.prototype.string = function () {
    var n = this.varint(), start = this.pos;
    this.pos += n;
    return utf8.decode(this.bytes.subarray(start, start + n));
  };
  Reader.prototype.packed = function () {
    var r = this.sub(), out = [];
    while (r.pos < r.bytes.length) out.push(r.varint());
    return out;
  };
  function zigzag(n) { return n % 2 === 1 ? -(n + 1) / 2 : n / 2; }

  function readValue(r) {
    var value = null;
    while (r.pos < r.bytes.length) {
      var tag = r.varint(), field = Math.floor(tag / 8), wire = tag & 7;
      if (field === 1) value = r.string();
      else if (field === 2) { value = r.view.getFloat32(r.pos, true); r.pos += 4; }
      else if (field === 3) { value = r.view.getFloat64(r.pos, true); r.pos += 8; }
      else if (field === 4) { value = r.varint(); if (value >= 9223372036854775807) value -= 18446744073709551616; }
      else if (field === 5) value = r.varint();
      else if (field === 6) value = zigzag(r.varint());
      else if (field === 7) value = Boolean(r.varint());
      else r.skip(wire);
    }
    return value;
  }

  function geometry(commands, type) {
    var rings = [], ring = null, x = 0, y = 0, i = 0;
    while (i < commands.length) {
      var c = commands[i++], id = c & 7, count = Math.floor(c / 8);
      if (id === 1 || id === 2) {
        for (var k = 0; k < count; k++) {
          x += zigzag(commands[i++]); y += zigzag(commands[i++]);
          if (id === 1 || !ring) { ring = []; rings.push(ring); }
          ring.push({ x: x, y: y });
        }
      } else if (id === 7) {
        if (ring && ring.length) ring.push({ x: ring[0].x, y: ring[0].y });
      } else {
        throw new Error("unknown geometry command " + id);
      }
    }
    if (type === 1) {  // points: one "ring" per point, as VectorGrid's point symbolizer expects
      var points = [];
      rings.forEach(function (r) { r.forEach(function (p) { points.push([p]); }); });
      return points;
    }
    return rings;
  }

  function readLayer(r) {
    var name = "", extent = 4096, keys = [], values = [], raw = [];
    while (r.pos < r.bytes.length) {
      var tag = r.varint(), field = Math.floor(tag / 8), wire = tag & 7;
      if (field === 1) name = r.string();
      else if (field === 2) raw.push(r.sub());
      else if (field === 3) keys.push(r.string());
      else if (field === 4) values.push(readValue(r.sub()));
      else if (field === 5) extent = r.varint();
      else r.skip(wire);
    }
    var features = raw.map(function (fr) {
      var f = { id: undefined, type: 0, properties: {}, geometry: [] }, tags = [], commands = [];
      while (fr.pos < fr.bytes.length) {
        var tag = fr.varint(), field = Math.floor(tag / 8), wire = tag & 7;
        if (field === 1) f.id = fr.varint();
        else if (field === 2) tags = fr.packed();
        else if (field === 3) f.type = fr.varint();
        else if (field === 4) commands = fr.packed();
        else fr.skip(wire);
      }
      for (var i = 0; i + 1 < tags.length; i += 2) f.properties[keys[tags[i]]] = values[tags[i + 1]];
      f.geometry = geometry(commands, f.type);
      return f;
    });
    return { name: name, extent: extent, features: features };
  }

  /* An MVT as {layerName: {name, extent, features}} (MVT layers concatenate: a later layer of the
     same name adds its features). */
  G.decodeMvt = function (buffer) {
    var r = new Reader(buffer), layers = {};
    while (r.pos < r.bytes.length) {
      var tag = r.varint(), field = Math.floor(tag / 8), wire = tag & 7;
      if (field === 3) {
        var layer = readLayer(r.sub());
        if (layers[layer.name]) layers[layer.name].features = layers[layer.name].features.concat(layer.features);
        else layers[layer.name] = layer;
      } else r.skip(wire);
    }
    return layers;
  };
})();
