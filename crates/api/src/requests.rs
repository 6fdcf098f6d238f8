//! The requests that share a shape, each registered once: the List methods (AIP-158: a page size
//! and a page token in, one page of items and the next page's token out) and the creates that
//! carry a `request_id` (AIP-155). The server answers Lists through [`ListRequest`] and
//! [`ListResponse`] (`pc_server::convert::list_page`) and keys creates by [`IdempotentRequest`]
//! (`pc_server::create`); the Rust client walks pages through the same traits
//! (`partner_center_client::ListPager`). The contract registers them: the build script finds every
//! method whose request has `page_size` and `page_token`, or `request_id`, and writes its line of
//! `lists!` or `idempotent!` (`build.rs`, `shared_shapes`), so a new List or create needs nothing
//! here.

/// A List request: it asks for `page_size` items after `page_token`.
pub trait ListRequest: Clone {
    type Response: ListResponse;
    fn page_size(&self) -> i32;
    fn page_token(&self) -> &str;
    fn set_page_token(&mut self, token: String);
}

/// A List response: one page of items and the token of the next page (empty on the last).
pub trait ListResponse {
    type Item;
    fn from_page(items: Vec<Self::Item>, next_page_token: String) -> Self;
    fn into_page(self) -> (Vec<Self::Item>, String);
}

macro_rules! lists {
    ($($request:ty => $response:path { $items:ident: $item:ty }),+ $(,)?) => {$(
        impl ListRequest for $request {
            type Response = $response;

            fn page_size(&self) -> i32 {
                self.page_size
            }

            fn page_token(&self) -> &str {
                &self.page_token
            }

            fn set_page_token(&mut self, token: String) {
                self.page_token = token;
            }
        }

        impl ListResponse for $response {
            type Item = $item;

            fn from_page($items: Vec<$item>, next_page_token: String) -> Self {
                Self { $items, next_page_token }
            }

            fn into_page(self) -> (Vec<$item>, String) {
                (self.$items, self.next_page_token)
            }
        }
    )+};
}

/// A create that carries an AIP-155 `request_id`.
pub trait IdempotentRequest: prost::Message + Clone {
    fn request_id(&self) -> &str;
    fn clear_request_id(&mut self);
}

macro_rules! idempotent {
    ($($request:ty),+ $(,)?) => {$(
        impl IdempotentRequest for $request {
            fn request_id(&self) -> &str {
                &self.request_id
            }

            fn clear_request_id(&mut self) {
                self.request_id.clear();
            }
        }
    )+};
}

include!(concat!(env!("OUT_DIR"), "/requests.rs"));
