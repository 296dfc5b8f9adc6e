// Products: the list (any status), a new product (with its first image and stock), and one product: its prices,
// status, images and variants. Staff see all of it and change none of it (docs/api.md, "Who may do what").
import { ProblemError } from "../api.js";
import { announce, h, replaceChildren } from "../dom.js";
import { formatMoney, majorUnits, minorUnits } from "../format.js";
import { shop } from "../shop.js";
import { adminApi } from "./admin-api.js";
import { isAdmin, uploadToBucket } from "./session.js";
import { actionForm, field, pagedList, table } from "./ui.js";

const STATUSES = [["", "Any status"], ["active", "Active"], ["draft", "Draft"], ["archived", "Archived"]];
const IMAGE_TYPES = "image/jpeg,image/png,image/webp";
let flash = ""; // what the next product view says first ("Product created.")

const readOnly = () => h("p", { class: "notice" }, "You can look at the catalog; changing it takes the admin group.");

const priceRange = (variants) => {
  const prices = variants.map((v) => v.price).sort((a, b) => a.amount - b.amount);
  if (!prices.length) return "";
  const [low, high] = [prices[0], prices.at(-1)];
  return low.amount === high.amount ? formatMoney(low) : `${formatMoney(low)} – ${formatMoney(high)}`;
};

// A price field's text as Money, or a problem naming the field (shown like the API's own).
function price(text, fieldName) {
  const amount = minorUnits(text, shop.currency);
  if (amount !== null) return { amount, currency: shop.currency };
  throw new ProblemError(422, { title: "Please check the following.", code: "validation_error",
    errors: [{ field: fieldName, code: "invalid_amount", message: `must be an amount like ${majorUnits(
      { amount: 4990, currency: shop.currency })}` }] });
}

export async function productsView(view, _params, { signal, navigate, query }) {
  const status = query.get("status") ?? "";
  const filter = field("Status", "status", { tag: "select", options: STATUSES });
  filter.control.value = status;
  const form = h("form", { class: "filters", "aria-label": "Filter products" }, filter.element,
    h("button", { type: "submit", class: "button secondary" }, "Show"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(filter.control.value ? `#/products?status=${filter.control.value}` : "#/products");
  });
  const list = await pagedList((cursor) => adminApi.products(status, cursor, signal).then((r) => r.data),
    (products) => table("Products", ["Name", "Status", "Price", "Available"], products.map((product) => [
      h("a", { href: `#/products/${encodeURIComponent(product.id)}` }, product.name),
      h("span", { class: `badge status-${product.status}` }, product.status),
      priceRange(product.variants),
      String(product.variants.reduce((sum, v) => sum + v.available, 0)),
    ])), { empty: "No products with this status." });
  replaceChildren(view, h("h1", { tabindex: "-1" }, "Products"),
    isAdmin() ? h("p", {}, h("a", { class: "button primary", href: "#/products/new" }, "New product")) : readOnly(),
    form, list);
}

export async function newProductView(view, _params, { signal, navigate }) {
  const heading = h("h1", { tabindex: "-1" }, "New product");
  if (!isAdmin()) {
    replaceChildren(view, heading, readOnly());
    return;
  }
  const categories = (await adminApi.categories(signal)).data.items;
  const f = {
    name: field("Name", "name", { required: true, maxlength: 200 }),
    id: field("Product id (optional)", "id", { hint: "Lower-case letters, digits and dashes; made from the name when "
      + "left empty.", pattern: "[a-z0-9][a-z0-9-]*" }),
    category: field("Category", "category", { tag: "select", options: categories.map((c) => [c.id, c.name]) }),
    description: field("Description", "description", { tag: "textarea", rows: 3, maxlength: 5000 }),
    status: field("Status", "status", { tag: "select", options: [["draft", "Draft (not sold yet)"],
      ["active", "Active (sold in the shop)"]] }),
    title: field("Variant", "variants.0.title", { value: "Standard", required: true }),
    sku: field("SKU", "variants.0.sku", { required: true, hint: "Upper-case letters, digits and dashes.",
      autocapitalize: "characters" }),
    price: field(`Price (${shop.currency})`, "variants.0.price", { inputmode: "decimal", required: true }),
    units: field("Units in stock", "units", { type: "number", min: 0, step: 1, value: 0 }),
    image: field("Image (optional)", "image", { type: "file", accept: IMAGE_TYPES }),
  };
  const value = (name) => f[name].control.value.trim();
  const fields = { name: f.name.control, id: f.id.control, category: f.category.control,
    description: f.description.control, "variants.0.title": f.title.control, "variants.0.sku": f.sku.control,
    "variants.0.price": f.price.control, "variants.0.price.currency": f.price.control, variants: f.sku.control };
  const { form } = actionForm({
    label: "New product", button: "Create product", fields,
    children: Object.values(f).map((x) => x.element),
    action: async () => {
      const sku = value("sku").toUpperCase();
      const body = {
        ...(value("id") ? { id: value("id") } : {}),
        name: value("name"), description: value("description"), category: value("category"),
        status: value("status"), images: [],
        variants: [{ sku, title: value("title"), price: price(value("price"), "variants.0.price") }],
      };
      const units = Number(value("units") || 0);
      const product = (await adminApi.createProduct(body)).data;
      // The product exists now: what follows is reported on its page, where it can be done again.
      const problems = [];
      const file = f.image.control.files[0];
      if (file) await addImage(product, file).catch((error) => problems.push(`The image was not added: ${error.message}`));
      if (units > 0) {
        await adminApi.adjust(sku, { delta: units, reason: "received", note: "first stock" })
          .catch((error) => problems.push(`The stock was not added: ${error.message}`));
      }
      flash = ["Product created.", ...problems].join(" ");
      navigate(`#/products/${encodeURIComponent(product.id)}`);
    },
  });
  replaceChildren(view, heading, form);
}

async function addImage(product, file) {
  const { upload } = (await adminApi.imageUpload(product.id, file)).data;
  await uploadToBucket(upload, file);
}

export async function productView(view, [id], { signal }) {
  const draw = async (notice) => {
    const product = (await adminApi.product(id, signal)).data;
    replaceChildren(view, ...productPage(product, notice, draw));
  };
  const notice = flash;
  flash = "";
  await draw(notice);
}

// After a write: the product as it is now, and a sentence on top (focus goes there, screen readers read it).
async function redraw(draw, notice) {
  await draw(notice);
  announce(notice);
}

function productPage(product, notice, draw) {
  const admin = isAdmin();
  const archived = product.status === "archived";
  // A stale version (someone else saved first): the product as it is now, and why the page changed.
  const write = async (send, done) => {
    try {
      await send();
    } catch (error) {
      if (error.code !== "version_conflict") throw error;
      await redraw(draw, "This product was changed meanwhile, so it has been reloaded: check it and try again.");
      return undefined;
    }
    await redraw(draw, done);
    return undefined;
  };
  const variants = table("Variants", ["SKU", "Variant", "Price", "Available"], product.variants.map((v) => [
    h("a", { href: `#/stock/${encodeURIComponent(v.sku)}` }, v.sku), v.title, formatMoney(v.price), String(v.available),
  ]));
  const images = product.images.length
    ? h("ul", { class: "images" }, product.images.map((url, i) => h("li", {},
      h("img", { src: url, alt: `Image ${i + 1} of ${product.name}`, class: "thumb" }))))
    : h("p", {}, "No images yet.");
  const parts = [
    h("p", { class: "breadcrumb" }, h("a", { href: "#/products" }, "Products")),
    h("h1", { tabindex: "-1" }, product.name),
    h("p", { class: "notice", role: "status" }, notice ?? ""),
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", {}, h("span", { class: `badge status-${product.status}` }, product.status)),
      h("dt", {}, "Id"), h("dd", {}, product.id),
      h("dt", {}, "Category"), h("dd", {}, product.category),
      h("dt", {}, "Version"), h("dd", {}, String(product.version))),
    product.description ? h("p", { class: "description" }, product.description) : null,
    variants,
    h("h2", {}, "Images"), images,
  ];
  if (!admin) return [...parts, readOnly()];
  if (archived) {
    const restore = actionForm({ label: "Restore", button: "Restore as draft",
      action: () => write(() => adminApi.replaceProduct(product, { status: "draft" }), "Restored as a draft.") });
    return [...parts, h("h2", {}, "Archived"), h("p", {}, "Archived products are not sold. Restore it as a draft "
      + "to change it or sell it again."), restore.form];
  }
  const prices = product.variants.map((v, i) => field(`Price of ${v.title} (${v.sku}), ${v.price.currency}`,
    `variants.${i}.price`, { value: majorUnits(v.price), inputmode: "decimal" }));
  const priceForm = actionForm({
    label: "Prices", button: "Save prices",
    fields: Object.fromEntries(prices.map((p, i) => [`variants.${i}.price`, p.control])),
    children: [h("h2", {}, "Prices"), prices.map((p) => p.element)],
    action: () => {
      const variants = product.variants.map(({ sku, title }, i) =>
        ({ sku, title, price: price(prices[i].control.value, `variants.${i}.price`) }));
      return write(() => adminApi.replaceProduct(product, { variants }), "Prices saved.");
    },
  });
  const image = field("Image", "image", { type: "file", accept: IMAGE_TYPES, required: true });
  const imageForm = actionForm({
    label: "Add an image", button: "Upload image", fields: { images: image.control },
    children: [h("h2", {}, "Add an image"), image.element],
    action: () => {
      const file = image.control.files[0];
      if (!file) throw new ProblemError(422, { title: "Choose an image file first.", code: "no_file" });
      return write(() => addImage(product, file), "Image added.");
    },
  });
  const next = product.status === "active" ? ["draft", "Take off sale (draft)", "Taken off sale: it is a draft."]
    : ["active", "Publish (sell it)", "Published: the shop sells it."];
  const statusForm = actionForm({ label: "Status", button: next[1], className: "admin-form inline",
    children: h("h2", {}, "Status"),
    action: () => write(() => adminApi.replaceProduct(product, { status: next[0] }), next[2]) });
  const archiveForm = actionForm({ label: "Archive", button: "Archive product", className: "admin-form inline",
    children: h("p", { class: "hint" }, "Archiving takes it out of the shop; orders keep their lines."),
    action: () => write(() => adminApi.archiveProduct(product), "Archived: the shop no longer sells it.") });
  archiveForm.submit.classList.replace("primary", "danger");
  return [...parts, priceForm.form, imageForm.form, statusForm.form, archiveForm.form];
}
