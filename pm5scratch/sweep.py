import time, torch, sys, json, os
from transformers import LlavaConfig, LlavaForConditionalGeneration, CLIPVisionConfig, LlamaConfig
from polymodal.data.synth.shapes_vqa import *
from polymodal.data.synth.shapes_render import SIZES
name=sys.argv[1]; H=int(sys.argv[2]); LV=int(sys.argv[3]); LT=int(sys.argv[4]); LR=float(sys.argv[5]); STEPS=int(sys.argv[6]); CAP=int(sys.argv[7]); B=int(sys.argv[8]) if len(sys.argv)>8 else 64
torch.set_num_threads(2)
dev=torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.manual_seed(0)
folder=build_shapes_vqa()
train=ShapesVQA(folder,'train'); test=ShapesVQA(folder,'test')
tok=train.tokenizer
vocab=dict(tok.get_vocab())
for w in ["describe","small","large",",","."]: vocab[w]=len(vocab)
V=len(vocab)
vis=CLIPVisionConfig(hidden_size=H,intermediate_size=2*H,num_hidden_layers=LV,num_attention_heads=4,image_size=64,patch_size=8,num_channels=3,projection_dim=H)
txt=LlamaConfig(vocab_size=V,hidden_size=H,intermediate_size=2*H,num_hidden_layers=LT,num_attention_heads=4,num_key_value_heads=4,max_position_embeddings=256,pad_token_id=0,bos_token_id=2,eos_token_id=3,tie_word_embeddings=False)
cfg=LlavaConfig(vision_config=vis,text_config=txt,image_token_index=4,image_seq_length=64,vision_feature_select_strategy="default",vision_feature_layer=-1)
model=LlavaForConditionalGeneration(cfg).to(dev)
ans_ids=torch.tensor([vocab[a] for a in ANSWERS])
scenes=train.scenes
def caption(ds,i):
    sc=scenes[i]; sc=sc[sc[:,0]>0]; sc=sc[sc[:,4].argsort()]
    words=[]
    for o in sc: words+=[SIZES[int(o[3])],COLORS[int(o[2])],SHAPES[int(o[1])],","]
    words[-1]="."
    return [vocab["describe"]]+[vocab[w] for w in words]
def batch(idx, ds, cap=False):
    texts=ds.tensors['text_ids'][idx]; n=len(idx); seqs=[]
    for i in range(n):
        if cap:
            c=caption(ds,int(idx[i])); p=[2]+[4]*64+c[:1]; tgt=c[1:]+[3]
        else:
            L=int((texts[i]!=0).sum()); p=[2]+[4]*64+texts[i,:L].tolist(); tgt=[int(ans_ids[ds.tensors['label'][idx[i]]]),3]
        seqs.append((p,tgt))
    T=max(len(p)+len(t) for p,t in seqs)
    ids=torch.zeros(n,T,dtype=torch.long); mask=torch.zeros(n,T,dtype=torch.long); labels=torch.full((n,T),-100)
    for i,(p,t) in enumerate(seqs):
        s=p+t; ids[i,T-len(s):]=torch.tensor(s); mask[i,T-len(s):]=1; labels[i,T-len(t):]=torch.tensor(t)
    pix=ds.tensors['image'][idx].float()/255
    pix=(pix-MEAN)/STD
    return ids.to(dev),mask.to(dev),labels.to(dev),pix.to(dev)
MEAN=torch.tensor([0.4815,0.4578,0.4082]).view(1,3,1,1); STD=torch.tensor([0.2686,0.2613,0.2758]).view(1,3,1,1)
def pos(mask): return (mask.cumsum(-1)-1).clamp(min=0)
opt=torch.optim.AdamW(model.parameters(),lr=LR,weight_decay=0.01)
sched=torch.optim.lr_scheduler.OneCycleLR(opt,max_lr=LR,total_steps=STEPS+CAP,pct_start=0.05)
g=torch.Generator().manual_seed(0)
def evaluate(n=1000):
    model.eval(); correct=torch.zeros(5); count=torch.zeros(5)
    with torch.no_grad():
        for s in range(0,n,250):
            idx=torch.arange(s,s+250)
            ids,mask,labels,pix=batch(idx,test)
            ids,mask=ids[:,:-2],mask[:,:-2]
            out=model(input_ids=ids,attention_mask=mask,position_ids=pos(mask),pixel_values=pix,logits_to_keep=1)
            pred=out.logits[:,-1].argmax(-1).cpu()
            ok=(pred==ans_ids[test.tensors['label'][idx]]).float()
            qt=test.tensors['question_type'][idx]
            correct.index_add_(0,qt,ok); count.index_add_(0,qt,torch.ones_like(ok))
    model.train()
    return round((correct.sum()/count.sum()).item(),3), [round(x,2) for x in (correct/count).tolist()]
t0=time.time(); log=[]
for step in range(STEPS+CAP):
    idx=torch.randint(0,len(train),(B,),generator=g)
    cap=step<CAP
    ids,mask,labels,pix=batch(idx,train,cap)
    out=model(input_ids=ids,attention_mask=mask,position_ids=pos(mask),pixel_values=pix,labels=labels)
    out.loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(),1.0); opt.step(); sched.step(); opt.zero_grad()
    if (step+1)%250==0:
        r=evaluate() if not cap else None
        log.append((step+1, round(out.loss.item(),3), r, round(time.time()-t0,1)))
        print(name, log[-1], flush=True)
json.dump(log, open(os.environ.get("OUT","/tmp")+f"/{name}.json","w"))
